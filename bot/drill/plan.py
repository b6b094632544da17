"""From a scenario to a timeline: who texts what, when (deterministic for a seed).

Victim texts come from per-language templates in drills/templates/<lang>.toml: ``critical``
(a threat to life), ``other`` (needs and questions), ``status``, ``join`` and ``flood``;
placeholders ``{n}`` (the head count the victim states) and ``{place}`` (a scenario area)."""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from bot.drill.scenario import Population, Scenario, drills_dir

TEMPLATE_KINDS = ("critical", "other", "status", "join", "flood")


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


def _population(sc: Scenario, index: int, pop: Population, rng: random.Random) -> list[PlannedSms]:
    end = pop.end_s if pop.end_s is not None else sc.duration_s
    out: list[PlannedSms] = []
    for i in range(pop.count):
        number = f"+8801{7 + index % 3}{index:02d}{i:06d}"
        victim = f"{pop.name}/{i}"
        lang = _pick_lang(rng, pop.languages)
        t = templates(lang)
        place = rng.choice(sc.areas)
        at = rng.uniform(pop.start_s, end)
        modem = (index * 7919 + i) % sc.sim.modems

        base = PlannedSms(at, number, "", victim, "report", lang, False, None, place, modem)
        sms = _maker(out, base)
        if rng.random() < pop.join:
            sms(at, rng.choice(t["join"]).format(place=place), "join", False, None)
            continue
        threat = rng.random() < pop.life_threat
        n = rng.randint(2, 9)
        text = rng.choice(t["critical" if threat else "other"]).format(n=n, place=place)
        people = n if "{n}" in text or str(n) in text else None
        sms(at, text, "report", threat, people)
        if rng.random() < pop.repeat:
            sms(at + pop.repeat_after_s, text, "repeat", threat, people)
        if rng.random() < pop.status:
            sms(at + pop.status_after_s, rng.choice(t["status"]), "status", False, None)
    return out


def build(sc: Scenario) -> list[PlannedSms]:
    """Every SMS of the scenario, in time order (ties keep each sender's own order)."""
    rng = random.Random(sc.seed)
    planned: list[PlannedSms] = []
    for index, pop in enumerate(sc.victims):
        planned += _population(sc, index, pop, rng)
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
