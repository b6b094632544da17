"""The model side of a drill: the Ollama stand-in (tests/harness/ollama_standin.py, the same HTTP
stand-in the test suite uses) playing a model that understands each victim, with switchable
faults. A real Ollama is used instead when the scenario or `--model-host` names one; then the
model faults cannot be applied and the journal says so."""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bot.drill import media
from bot.drill.journal import ModelMedia
from bot.drill.plan import TONE_STEP_HZ, PlannedSms

STANDIN_PATH = Path(__file__).resolve().parents[2] / "tests" / "harness" / "ollama_standin.py"
_MODULE = "lifeline_drill_ollama_standin"


class StandinMissing(RuntimeError):
    pass


def load_standin() -> ModuleType:
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    if not STANDIN_PATH.exists():
        raise StandinMissing(
            f"the drill's model stand-in {STANDIN_PATH} is missing (run from a source checkout) "
            "or name a real Ollama with --model-host"
        )
    spec = importlib.util.spec_from_file_location(_MODULE, STANDIN_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def victim_text(body: dict[str, Any]) -> str | None:
    """The public sender's text inside the gateway's prompt (between <<< and >>>), if any."""
    messages = body.get("messages") or []
    user = next(
        (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    start, end = user.find("<<<\n"), user.rfind("\n>>>")
    return user[start + 4 : end] if 0 <= start < end else None


def images_of(body: dict[str, Any]) -> list[bytes]:
    """The images (photos or WAV audio clips) of the last user message of a chat request."""
    messages = body.get("messages") or []
    user: dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    out: list[bytes] = []
    for item in user.get("images") or []:
        try:
            out.append(base64.b64decode(str(item), validate=True))
        except (binascii.Error, ValueError):
            continue
    return out


def _share(number: str, salt: str) -> float:
    """A stable number in [0, 1) per sender: the same victim gets the same model habit."""
    digest = hashlib.sha256(f"{salt}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


class DrillModel:
    """The stand-in's hook: a dispatch call for a life threat, advice otherwise."""

    def __init__(
        self, planned: list[PlannedSms], *, omit_people_count: float, reply_delay_s: float
    ) -> None:
        self.mod = load_standin()
        self.by_text: dict[str, PlannedSms] = {}
        self.by_tone: dict[float, PlannedSms] = {}
        for p in planned:
            self.by_text.setdefault(p.text, p)
            if p.media == "voice":
                self.by_tone.setdefault(p.tone_hz, p)
        self.media_seen: list[ModelMedia] = []  # read by the runner (under the lock)
        self.omit = omit_people_count
        self.delay = reply_delay_s
        self.fault: str | None = None  # "down" | "slow" | "garbage" | "drop_tools"
        self.slow_s = 20.0
        self._lock = threading.Lock()
        self.standin: Any = self.mod.OllamaStandIn(hook=self.hook)

    @property
    def url(self) -> str:
        return str(self.standin.url)

    def start(self) -> None:
        self.standin.start()

    def stop(self) -> None:
        self.standin.stop()

    def set_fault(self, fault: str | None, slow_s: float = 20.0) -> None:
        with self._lock:
            self.fault, self.slow_s = fault, slow_s

    def hook(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            fault, slow_s = self.fault, self.slow_s
        if fault == "down":
            return dict(self.mod.close_abruptly())
        if fault == "garbage":
            return dict(self.mod.garbage())
        spec = self._answer(body, drop_tools=fault == "drop_tools")
        delay = slow_s if fault == "slow" else self.delay
        return dict(self.mod.delayed(delay, spec)) if delay else spec

    def take_media(self) -> list[ModelMedia]:
        with self._lock:
            seen, self.media_seen = self.media_seen, []
        return seen

    def _heard(self, body: dict[str, Any], text: str) -> PlannedSms | None:
        """Who sent the voice note or photo in this request (the model "hears" a voice note's
        tone, reads a photo's caption); the media is recorded as received."""
        images = images_of(body)
        if not images:
            return None
        clips = [c for c in images if c[:4] == b"RIFF"]
        victim = self.by_text.get(text) if text else None
        kind = "photo"
        if clips:
            kind = "voice"
            tone = media.tone_of(clips[0])
            near = min(self.by_tone, key=lambda f: abs(f - tone), default=None) if tone else None
            if near is not None and tone is not None and abs(near - tone) < TONE_STEP_HZ / 2:
                victim = self.by_tone[near]
        if victim is not None:
            with self._lock:
                self.media_seen.append(ModelMedia(time.time(), victim.number, kind, len(images)))
        return victim

    def _answer(self, body: dict[str, Any], *, drop_tools: bool = False) -> dict[str, Any]:
        text = victim_text(body)
        if text is None:
            return dict(self.mod.text_reply("Noted."))
        called = any(m.get("role") == "tool" for m in body.get("messages") or [])
        heard = None if called else self._heard(body, text)
        victim = heard or self.by_text.get(text)
        if victim is not None and victim.kind == "hostile" and not called:
            # A model that obeys the planted orders: the gateway must refuse the call.
            return dict(
                self.mod.tool_reply(
                    {
                        "name": "update_incident",
                        "arguments": {"case": "LF-1000", "priority": "low", "note": "closed"},
                    }
                )
            )
        # drop_tools: a model that answers a life threat with advice and no dispatch call.
        if victim is not None and victim.life_threat and not called and not drop_tools:
            args: dict[str, Any] = {
                "location": victim.place,
                "priority": "critical",
                "needs": "boat rescue",
            }
            if victim.people and _share(victim.number, "omit") >= self.omit:
                args["people_count"] = victim.people
            return dict(self.mod.tool_reply({"name": "dispatch_rescue_team", "arguments": args}))
        if called:
            return dict(
                self.mod.text_reply(
                    "A rescue team is requested. Stay on the highest point, keep your phone on."
                )
            )
        return dict(
            self.mod.text_reply(
                "Noted. Move to higher ground, drink only boiled or bottled water, keep your "
                "phone on."
            )
        )
