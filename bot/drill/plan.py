"""From a scenario to a timeline: who texts what, when (deterministic for a seed).

Victim texts come from per-language templates in drills/templates/<lang>.toml: ``critical``
(a threat to life), ``other`` (needs and questions), ``status``, ``join`` and ``flood``;
placeholders ``{n}`` (the head count the victim states) and ``{place}`` (a scenario area)."""

from __future__ import annotations

import hashlib
import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from bot.drill.scenario import Population, Scenario, Team, drills_dir
from bot.synapse_local import SERVER_NAME

TEMPLATE_KINDS = ("critical", "other", "status", "join", "flood")
# Voice notes: each voice victim speaks on a tone of its own, so the stand-in model can tell
# whose voice note it "hears" (bot/drill/model.py) as a real model would understand the words.
TONE_BASE_HZ = 250.0
TONE_STEP_HZ = 15.0
TONES = 150  # 250 … 2485 Hz; more voice victims share tones (the model then guesses the text)


@dataclass(frozen=True, slots=True)
class PlannedSms:
    at_s: float  # scenario seconds
    number: str
    text: str
    victim: str
    kind: str  # report | repeat | status | join | flood | hostile
    lang: str
    life_threat: bool
    people: int | None
    place: str
    modem: int  # index into the drill's modems
    channel: str = "sms"  # "matrix": ``number`` is the victim's Matrix user id
    media: str = ""  # "voice" | "photo" (Matrix victims' first message)
    tone_hz: float = 0.0  # voice: the note's tone
    lat: float | None = None  # photo: the EXIF GPS position
    lon: float | None = None


def area_point(place: str) -> tuple[float, float]:
    """A fixed position per area name (around Kurigram), for photos' EXIF GPS."""
    d = hashlib.sha256(place.encode()).digest()
    return 25.5 + d[0] / 255 * 0.6, 89.4 + d[1] / 255 * 0.4


def team_config(team: Team) -> dict[str, Any]:
    """A scenario team as the gateway's ``[[teams]]`` entry, placed on the board's map."""
    lat, lon = team.base_at or area_point(team.base or team.id)
    return {**team.model_dump(exclude={"base_at"}), "base_at": [lat, lon]}


def matrix_user(pop_index: int, i: int) -> str:
    return f"@victim-{pop_index}-{i}:{SERVER_NAME}"


@cache
def templates(lang: str, root: Path | None = None) -> dict[str, tuple[str, ...]]:
    path = (root or drills_dir() / "templates") / f"{lang}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in TEMPLATE_KINDS if not data.get(k)]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} templates")
    return {k: tuple(data.get(k, ())) for k in (*TEMPLATE_KINDS, "hostile")}


def _pick_lang(rng: random.Random, shares: dict[str, float]) -> str:
    langs = sorted(shares)
    return rng.choices(langs, weights=[shares[k] for k in langs])[0]


def _maker(out: list[PlannedSms], base: PlannedSms) -> Callable[..., None]:
    def sms(at_s: float, text: str, kind: str, threat: bool, people: int | None) -> None:
        out.append(
            replace(base, at_s=at_s, text=text, kind=kind, life_threat=threat, people=people)
        )

    return sms


def _population(
    sc: Scenario, index: int, pop: Population, rng: random.Random, tones: list[int]
) -> list[PlannedSms]:
    end = pop.end_s if pop.end_s is not None else sc.duration_s
    out: list[PlannedSms] = []
    # A generator of its own: adding Matrix victims does not change an SMS-only drill's people.
    how = random.Random(f"{sc.seed}:{index}:channel")
    channels = pop.channel_shares
    for i in range(pop.count):
        number = f"+8801{7 + index % 3}{index:02d}{i:06d}"
        victim = f"{pop.name}/{i}"
        lang = _pick_lang(rng, pop.languages)
        t = templates(lang)
        place = rng.choice(sc.areas)
        at = rng.uniform(pop.start_s, end)
        modem = (index * 7919 + i) % sc.sim.modems

        base = PlannedSms(at, number, "", victim, "report", lang, False, None, place, modem)
        if _pick_lang(how, channels) == "matrix":
            base = replace(base, number=matrix_user(index, i), channel="matrix")
        sms = _maker(out, base)
        if rng.random() < pop.join:
            sms(at, rng.choice(t["join"]).format(place=place), "join", False, None)
            continue
        threat = rng.random() < pop.life_threat
        n = rng.randint(2, 9)
        text = rng.choice(t["critical" if threat else "other"]).format(n=n, place=place)
        people = n if "{n}" in text or str(n) in text else None
        first = _media(base, pop, how, tones)
        if first is not base:
            out.append(replace(first, text=text, life_threat=threat, people=people))
        else:
            sms(at, text, "report", threat, people)
        if rng.random() < pop.repeat:
            sms(at + pop.repeat_after_s, text, "repeat", threat, people)
        if rng.random() < pop.status:
            sms(at + pop.status_after_s, rng.choice(t["status"]), "status", False, None)
    return out


def _media(base: PlannedSms, pop: Population, how: random.Random, tones: list[int]) -> PlannedSms:
    """A Matrix victim's first message as a voice note or a photo (with the text as caption),
    by the population's ``media`` shares; else ``base`` unchanged."""
    if base.channel != "matrix" or not pop.media:
        return base
    roll, acc = how.random(), 0.0
    for kind in sorted(pop.media):
        acc += pop.media[kind]
        if roll >= acc:
            continue
        if kind == "voice":
            tone = TONE_BASE_HZ + TONE_STEP_HZ * (tones[0] % TONES)
            tones[0] += 1
            return replace(base, kind="report", media="voice", tone_hz=tone)
        lat, lon = area_point(base.place)
        lat, lon = (
            round(lat + how.uniform(-0.01, 0.01), 5),
            round(lon + how.uniform(-0.01, 0.01), 5),
        )
        return replace(base, kind="report", media="photo", lat=lat, lon=lon)
    return base


def build(sc: Scenario) -> list[PlannedSms]:
    """Every message of the scenario, in time order (ties keep each sender's own order)."""
    rng = random.Random(sc.seed)
    planned: list[PlannedSms] = []
    tones = [0]
    for index, pop in enumerate(sc.victims):
        planned += _population(sc, index, pop, rng, tones)
    for j, fl in enumerate(sc.flooders):
        number = f"+88019{9 - fl.hostile}90{j:05d}"
        t = templates(fl.lang)
        place = rng.choice(sc.areas)
        kind = "hostile" if fl.hostile else "flood"
        for k in range(fl.messages):
            text = rng.choice(t[kind]).format(place=place)
            planned.append(
                PlannedSms(
                    fl.at_s + k * fl.every_s,
                    number,
                    text,
                    f"{kind}/{j}",
                    kind,
                    fl.lang,
                    False,
                    None,
                    place,
                    j % sc.sim.modems,
                )
            )
    return sorted(planned, key=lambda p: p.at_s)
