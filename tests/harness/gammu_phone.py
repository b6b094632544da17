"""A real libGammu "dummy" phone in a temp directory (adapted from shared/recipes/gammu_dummy.py).

The network side uses bot.sim (what tests inject is what a drill injects); what the gateway sent
is read back with bot.sim.read_outbox, which the Modem feeds by recording every accepted message
under <device>/sent/ (dummy modems only). No mocks of gammu anywhere."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot import sim
from bot.models import Inbound
from bot.transports.sms import Modem
from config.settings import ModemSettings


class Recorder:
    """An on_receive that 'commits' batches to a list; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[Inbound]] = []
        self.fail_with: Exception | None = None
        self.calls = 0

    async def __call__(self, batch: list[Inbound]) -> None:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        self.batches.append(list(batch))

    @property
    def messages(self) -> list[Inbound]:
        return [m for b in self.batches for m in b]


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DummyPhone:
    def __init__(self, path: Path, name: str = "sim1") -> None:
        self.path = path
        self.name = name

    def settings(self, **overrides: Any) -> ModemSettings:
        values: dict[str, Any] = {
            "name": self.name,
            "connection": "none",
            "model": "dummy",
            "device": str(self.path),
            "poll_interval_s": 0.05,
            "multipart_timeout_s": 600.0,
        }
        values.update(overrides)
        return ModemSettings(**values)

    def modem(
        self, on_receive: Recorder, *, settings: Mapping[str, Any] | None = None, **kw: Any
    ) -> Modem:
        kw.setdefault("backoff_initial_s", 0.05)
        kw.setdefault("backoff_max_s", 0.4)
        kw.setdefault("record_sent", sim.sent_recorder(self.path))
        return Modem(self.settings(**(settings or {})), on_receive, **kw)

    # -- network side -------------------------------------------------------------------------
    def inject_sms(self, number: str, text: str, *, when: datetime | None = None) -> list[Path]:
        return sim.inject_sms(self.path, number, text, when=when)

    def build_parts(
        self, number: str, text: str, *, when: datetime | None = None
    ) -> list[dict[str, Any]]:
        return sim.build_parts(number, text, when=when)

    def inject_parts(self, parts: Sequence[Mapping[str, Any]]) -> list[Path]:
        return sim.inject_parts(self.path, parts)

    def inbox_files(self) -> list[Path]:
        return sim.inbox_files(self.path)

    def sent_messages(self) -> list[dict[str, Any]]:
        return sim.read_outbox({self.name: self.path})


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


class HangingSlot:
    """A named pipe in the SIM inbox: libGammu's reader blocks in open() — a real hang, like a
    USB modem that stops answering. release() moves it away and frees every stuck reader."""

    def __init__(self, device: Path, slot: int = 1) -> None:
        box = device / "sms" / "1"
        box.mkdir(parents=True, exist_ok=True)
        self.path = box / str(slot)
        self.parked = device / f".fifo-{slot}"
        os.mkfifo(self.path)

    def release(self, seconds: float = 1.0) -> None:
        os.replace(self.path, self.parked)
        stop = time.monotonic() + seconds

        def pump() -> None:
            while time.monotonic() < stop:
                try:
                    fd = os.open(self.parked, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # ENXIO: nobody is blocked reading right now
                    time.sleep(0.01)
                    continue
                os.close(fd)
            self.parked.unlink(missing_ok=True)

        threading.Thread(target=pump, name="fifo-release", daemon=True).start()
