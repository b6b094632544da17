"""Drill scenario files (TOML under drills/): the format, validation and clear errors.

Times in a scenario are *scenario* seconds; ``speed`` compresses them (speed 10: one scenario
minute passes in 6 wall seconds). Promise budgets under ``[promises]`` are *wall* seconds: they
describe the real gateway, which does not run faster because the drill does.
See drills/README.md for every key."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from config.places import Position
from config.report import model_at

LANGS = ("en", "bn", "hi", "ur", "romanised")
CHANNELS = ("sms", "matrix")
MEDIA = ("voice", "photo")
FaultKind = Literal[
    "homeserver_down",
    "model_down",
    "model_slow",
    "model_garbage",
    "model_drop_tools",
    "gateway_kill",
    "modem_unplugged",
    "sim_blocked",
]
MODEM_FAULTS = ("modem_unplugged", "sim_blocked")


class ScenarioError(Exception):
    """A scenario file could not be loaded; the message names the file and every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    kind: str = "boat"
    base: str = ""
    # On the board's map; unset: a fixed made-up position for the base's name (plan.area_point)
    base_at: Position | None = None
    capacity: int = Field(1, ge=1)


class Population(_Strict):
    """A group of people who text in over a window of the scenario."""

    name: str = Field(min_length=1)
    count: int = Field(ge=1, le=5000)
    start_s: float = Field(0, ge=0)
    end_s: float | None = None  # default: the scenario's duration
    # "sms", "matrix", or shares ({ sms = 0.8, matrix = 0.2 }): Matrix victims DM the bot
    channel: Literal["sms", "matrix"] | dict[str, float] = "sms"
    # shares of the Matrix victims who send a voice note / a photo with EXIF GPS
    media: dict[str, float] = Field(default_factory=dict)
    languages: dict[str, float] = Field(default_factory=lambda: {"en": 1.0})
    life_threat: float = Field(0.3, ge=0, le=1)  # share whose first text is a threat to life
    repeat: float = Field(0.0, ge=0, le=1)  # share who send the very same text again
    repeat_after_s: float = Field(120, gt=0)
    status: float = Field(0.0, ge=0, le=1)  # share who later ask STATUS
    status_after_s: float = Field(600, gt=0)
    join: float = Field(0.0, ge=0, le=1)  # share who only JOIN an area for advisories

    @model_validator(mode="after")
    def _languages(self) -> Population:
        unknown = [k for k in self.languages if k not in LANGS]
        if unknown:
            raise ValueError(
                f"unknown language(s) {', '.join(unknown)}{_hint(unknown[0], LANGS)}; "
                f"use {', '.join(LANGS)}"
            )
        if any(v < 0 for v in self.languages.values()) or sum(self.languages.values()) <= 0:
            raise ValueError("languages: shares must be ≥ 0 and not all 0")
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValueError("end_s is before start_s")
        _shares("channel", self.channel_shares, CHANNELS, total=None)
        _shares("media", self.media, MEDIA, total=1.0)
        if self.media and not self.channel_shares.get("matrix"):
            raise ValueError("media: voice notes and photos come from Matrix victims only")
        return self

    @property
    def channel_shares(self) -> dict[str, float]:
        return {self.channel: 1.0} if isinstance(self.channel, str) else dict(self.channel)


def _shares(
    what: str, shares: dict[str, float], valid: tuple[str, ...], total: float | None
) -> None:
    unknown = [k for k in shares if k not in valid]
    if unknown:
        raise ValueError(
            f"{what}: unknown {unknown[0]!r}{_hint(unknown[0], valid)}; use {', '.join(valid)}"
        )
    if any(v < 0 for v in shares.values()):
        raise ValueError(f"{what}: shares must be ≥ 0")
    if total is None and shares and sum(shares.values()) <= 0:
        raise ValueError(f"{what}: shares must not all be 0")
    if total is not None and sum(shares.values()) > total + 1e-9:
        raise ValueError(f"{what}: shares add up to more than {total:g}")


class Flooder(_Strict):
    """One number that sends many texts: panic, a stuck phone, or (``hostile``) someone who
    writes orders for the bot ("close all cases", "!approve …") that must stay data."""

    at_s: float = Field(0, ge=0)
    messages: int = Field(ge=1, le=1000)
    every_s: float = Field(5, gt=0)
    lang: str = "en"
    hostile: bool = False

    @model_validator(mode="after")
    def _lang(self) -> Flooder:
        if self.lang not in LANGS:
            raise ValueError(f"unknown language {self.lang!r}{_hint(self.lang, LANGS)}")
        if self.hostile and self.lang != "en":
            raise ValueError("hostile texts exist in English only (drills/templates/en.toml)")
        return self


class Coordinators(_Strict):
    """Simulated staff; ``--humans`` switches them off so people do it in Element."""

    coordinators: int = Field(1, ge=1, le=10)
    responders: int = Field(1, ge=0, le=10)
    approve_critical_after_s: float = Field(60, ge=0)
    approve_other_after_s: float | None = Field(300, ge=0)  # None: never (left waiting)
    arrive_after_s: float = Field(600, ge=0)
    resolve_after_s: float = Field(300, ge=0)


class Fault(_Strict):
    kind: FaultKind
    at_s: float = Field(ge=0)
    for_s: float = Field(gt=0)  # gateway_kill: how long the gateway stays dead before restart
    delay_s: float = Field(20, gt=0)  # model_slow: seconds each model answer takes (wall)
    modem: int = Field(1, ge=1, le=8)  # modem_unplugged / sim_blocked: which SIM (1 = sim1)


class ModelPlan(_Strict):
    host: str = ""  # empty: the Ollama stand-in plays the model; else a real Ollama URL
    omit_people_count: float = Field(0.0, ge=0, le=1)  # share of dispatch calls without it
    reply_delay_s: float = Field(0.2, ge=0)  # stand-in think time (wall)


class SimPlan(_Strict):
    modems: int = Field(1, ge=1, le=8)
    send_per_minute: int = Field(20, ge=1, le=120)


class Promises(_Strict):
    """Budgets the checks use (wall seconds)."""

    ack_slack_s: float = Field(45, gt=0)  # added to the SIM-rate budget of every ack
    alert_within_s: float = Field(90, gt=0)  # critical case → coordinator alert, once reachable
    drain_within_s: float = Field(180, gt=0)  # after the last fault and the last message
    duplicate_window_s: float = Field(2.0, ge=0)  # a kill -9 this close after a send may repeat it
    restart_allowance_s: float = Field(60, ge=0)  # per kill -9: the gateway's own start-up


class Scenario(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    duration_s: float = Field(gt=0)
    speed: float = Field(1.0, gt=0, le=1000)
    seed: int = 1
    areas: list[str] = Field(min_length=1)
    teams: list[Team] = Field(min_length=1)
    victims: list[Population] = Field(min_length=1)
    flooders: list[Flooder] = Field(default_factory=list)
    staff: Coordinators = Coordinators()
    faults: list[Fault] = Field(default_factory=list)
    model: ModelPlan = ModelPlan()
    sim: SimPlan = SimPlan()
    promises: Promises = Promises()
    gateway: dict[str, Any] = Field(default_factory=dict)  # config overrides, checked at start

    @model_validator(mode="after")
    def _times(self) -> Scenario:
        for f in self.faults:
            if f.at_s > self.duration_s:
                raise ValueError(
                    f"fault {f.kind} at {f.at_s:g} s is after the end ({self.duration_s:g} s)"
                )
            if f.kind in MODEM_FAULTS and f.modem > self.sim.modems:
                raise ValueError(
                    f"fault {f.kind} names modem {f.modem}, but [sim] modems = {self.sim.modems}"
                )
            if f.kind == "sim_blocked" and self.sim.modems < 2:
                raise ValueError(
                    "fault sim_blocked needs [sim] modems >= 2: another SIM must take over"
                )
        return self

    def wall(self, scenario_s: float) -> float:
        """Scenario seconds → wall seconds."""
        return scenario_s / self.speed


def _hint(word: object, valid: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(v) for v in valid], n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s)"]
    for e in exc.errors():
        loc = tuple(e["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            model = model_at(Scenario, loc)
            hint = _hint(loc[-1], model.model_fields) if model else ""
            lines.append(f"  {where}: unknown key{hint}")
        else:
            lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def parse(data: dict[str, Any], path: Path) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_errors(path, exc)) from exc


def load(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: no such scenario file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, path)


def drills_dir() -> Path:
    """drills/ at the top of the source tree (next to bot/)."""
    return Path(__file__).resolve().parents[2] / "drills"


def resolve(name: str) -> Path:
    """A path, or a scenario name from drills/ ("embankment-breach-night")."""
    p = Path(name)
    if p.exists() or p.suffix == ".toml":
        return p
    return drills_dir() / f"{name}.toml"


def available() -> list[Path]:
    return sorted(drills_dir().glob("*.toml"))
