"""Modem and SIM faults for drills, applied to the libGammu dummy devices from outside the gateway.

``modem_unplugged``: the device stops answering and cannot be opened again until the drill plugs
it back. A named pipe in the SIM store makes the modem's next read block (as in
tests/test_faults.py), so the modem thread times out (``read_timeout_s``/``call_timeout_s``) and
goes down; ``operations.log``, which the dummy's Init opens for writing, is replaced by a
directory, so every re-init fails while unplugged. SMS sent to that SIM meanwhile wait on it (the
network holds them) and are read once the watchdog brings the modem up again.

``sim_blocked``: the operator bars the SIM from sending (anti-spam blocks happen in floods). The
dummy driver has no network that could refuse, so the drill's gateway runs under
``bot.drill.simnet``, whose simulated network refuses every SMS from a SIM whose device holds
:data:`BARRED`; the gateway's other SIMs must take over. Receiving keeps working."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.drill.journal import FaultSpan, Journal
from bot.drill.scenario import Scenario

BARRED = "network-barred"  # <device>/network-barred: the simulated network refuses its SMS
HANG_SLOT = "9999"  # a SIM inbox slot the drill never injects into (inject takes the lowest free)
DETECT_TIMEOUT_S = 10.0  # the drill's modem read/call timeouts when a scenario unplugs one
SIMNET_MODULE = "bot.drill.simnet"


def device_name(modem: int) -> str:
    return f"sim{modem}"


def gateway_module(sc: Scenario) -> str:
    """The module the drill's gateway runs as: the plain CLI unless a SIM gets blocked."""
    return SIMNET_MODULE if any(f.kind == "sim_blocked" for f in sc.faults) else "bot"


def tune(config: dict[str, Any], sc: Scenario) -> dict[str, Any]:
    """An unplugged modem is noticed by the watchdog's timeouts (real config keys, default 120 s
    and 30 s): a drill that unplugs one uses shorter ones so the outage fits its timeline."""
    if any(f.kind == "modem_unplugged" for f in sc.faults):
        for modem in config["sms"]["modems"]:
            modem.setdefault("read_timeout_s", DETECT_TIMEOUT_S)
            modem.setdefault("call_timeout_s", DETECT_TIMEOUT_S)
    return config


def unplug(device: Path) -> None:
    hang = device / "sms" / "1" / HANG_SLOT
    hang.parent.mkdir(parents=True, exist_ok=True)
    if not hang.exists():
        os.mkfifo(hang)
    log = device / "operations.log"
    log.unlink(missing_ok=True)
    log.mkdir(exist_ok=True)


def replug(device: Path, free_for_s: float = 0.5) -> None:
    hang = device / "sms" / "1" / HANG_SLOT
    if hang.exists():
        parked = device / f".unplugged-{HANG_SLOT}"
        os.replace(hang, parked)  # no new reader finds it
        # A reader abandoned in open() stays blocked there; opening the write end frees it.
        stop = time.monotonic() + free_for_s
        while time.monotonic() < stop:
            with contextlib.suppress(OSError):  # ENXIO: nobody is blocked on it right now
                os.close(os.open(parked, os.O_WRONLY | os.O_NONBLOCK))
            time.sleep(0.02)
        parked.unlink(missing_ok=True)
    log = device / "operations.log"
    if log.is_dir():
        shutil.rmtree(log)


def block(device: Path) -> None:
    (device / BARRED).write_text("barred by the operator (drill)\n", encoding="utf-8")


def unblock(device: Path) -> None:
    (device / BARRED).unlink(missing_ok=True)


def start(kind: str, device: Path) -> None:
    (unplug if kind == "modem_unplugged" else block)(device)


def end(kind: str, device: Path) -> None:
    (replug if kind == "modem_unplugged" else unblock)(device)


def held(journal: Journal, modem: str) -> list[FaultSpan]:
    """Spans during which SMS to ``modem`` could not be read (it was unplugged)."""
    return [f for f in journal.faults_of("modem_unplugged") if f.target == modem]


def held_extra(
    t: float, budget: float, spans: Iterable[FaultSpan], ended: float, allowance: float
) -> float:
    """Seconds an answer to an SMS that arrived at ``t`` may be late because its modem was
    unplugged during the wait: the rest of the outage plus the watchdog's re-init allowance."""
    extra = 0.0
    for f in spans:
        stop = (f.end if f.end is not None else ended) + allowance
        if f.start < t + budget and stop > t:
            extra += stop - max(f.start, t)
    return extra
