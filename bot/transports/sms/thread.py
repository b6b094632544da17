"""A modem's own worker thread: ``GammuThread`` owns it and its StateMachine; the functions
below are every libGammu call, run on it.

Each call function takes the ``gammu.StateMachine`` as its LAST argument, so callers bind the other
arguments with ``functools.partial`` and ``GammuThread.call`` runs ``fn(state_machine)`` on the
thread under a timeout (invariant 7: one thread per StateMachine). A call that times out leaves
the thread stuck inside libGammu; it is abandoned (Python cannot kill it) and the next ``start``
uses a fresh thread and StateMachine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import gammu

from bot import sim
from bot.transports.sms.codec import SmsPart
from bot.transports.sms.errors import UNREADABLE_SLOT, gsm_error_text
from bot.transports.sms.reassembly import Group, Location

log = logging.getLogger(__name__)

MAX_READ_PER_PASS: Final = 2000  # guard against a driver that never says ERR_EMPTY
MAX_EMPTY_SLOTS_SCANNED: Final = 64

T = TypeVar("T")


class NotConnected(Exception):
    """No StateMachine right now (never started, abandoned, or stopped)."""


class GammuThread:
    """One StateMachine on one dedicated thread. ``generation`` changes whenever the
    StateMachine does, so a caller can tell that a multi-step operation crossed a re-init."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.generation = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._sm: Any = None  # gammu.StateMachine, touched only on the thread
        self._abandoned = 0

    async def call(self, fn: Callable[[Any], T], limit_s: float, what: str) -> T:
        """``fn(state_machine)`` on the thread; TimeoutError after ``limit_s`` (thread lost)."""
        executor, sm = self._executor, self._sm
        if executor is None or sm is None:
            raise NotConnected(what)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, fn, sm), limit_s)
        except TimeoutError:
            self._abandon(what)
            raise

    async def start(self, config: dict[str, str], *, is_dummy: bool, limit_s: float) -> None:
        """(Re-)Init a fresh StateMachine. Raises gammu.GSMError, OSError or TimeoutError."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"modem-{self.name}"
            )
        executor, old = self._executor, self._sm
        self._sm = None
        self.generation += 1
        init = partial(init_state_machine, config, is_dummy, old)
        loop = asyncio.get_running_loop()
        try:
            self._sm = await asyncio.wait_for(loop.run_in_executor(executor, init), limit_s)
        except TimeoutError:
            self._abandon("Init")
            raise

    async def stop(self, limit_s: float) -> None:
        """Terminate the StateMachine and let the thread end; bounded by ``limit_s``."""
        executor, sm = self._executor, self._sm
        self._executor, self._sm = None, None
        self.generation += 1
        if executor is None:
            return
        if sm is not None:
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.run_in_executor(executor, sm.Terminate), limit_s)
            except TimeoutError:
                log.error("modem %s: Terminate timed out; abandoning its thread", self.name)
            except gammu.GSMError as exc:
                log.warning("modem %s: Terminate failed: %s", self.name, gsm_error_text(exc))
        executor.shutdown(wait=False, cancel_futures=True)

    def _abandon(self, what: str) -> None:
        executor = self._executor
        self._executor, self._sm = None, None
        self.generation += 1
        self._abandoned += 1
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        log.error(
            "modem %s: gammu thread stuck in %s; abandoned it (%d so far); re-init uses a new one",
            self.name,
            what,
            self._abandoned,
        )


# ----------------------------------------------------------------------------- on the thread


def init_state_machine(config: dict[str, str], is_dummy: bool, old: Any) -> Any:
    if old is not None:
        with contextlib.suppress(gammu.GSMError):
            old.Terminate()
    if is_dummy:  # libGammu's dummy driver needs its device directory to exist
        Path(config["Device"]).mkdir(parents=True, exist_ok=True)
    sm = gammu.StateMachine()
    sm.SetConfig(0, config)
    sm.Init()
    return sm


def dummy_stored(device: Path) -> int:
    """How many SMS parts libGammu's dummy driver holds in all its folders (GetNextSMS with
    Folder=0 walks every one; docs/facts.md)."""
    return len(sim.stored_files(device))


def _read_next_pass(sm: Any, stored: int | None = None) -> list[SmsPart]:
    """``GetNextSMS`` until ``ERR_EMPTY``, or until ``stored`` parts were read when the count
    is known: on the dummy driver the call that finds nothing more tries every location of
    every folder (5 × 10,000 failed opens, ~0.3 s of CPU), which 3 dummy modems polling every
    0.1 s paid on every pass, starving the gateway's own work on a small machine."""
    parts: list[SmsPart] = []
    seen: set[Location] = set()
    location = 0
    limit = MAX_READ_PER_PASS if stored is None else min(stored, MAX_READ_PER_PASS)
    for i in range(limit):
        try:
            if i == 0:
                entry = sm.GetNextSMS(Folder=0, Start=True)
            else:
                entry = sm.GetNextSMS(Folder=0, Location=location)
        except gammu.ERR_EMPTY:
            break
        if not entry:
            break
        location = int(entry[0]["Location"])
        slot = (int(entry[0]["Folder"]), location)
        if slot in seen:
            log.warning("GetNextSMS returned location %s twice; ending this pass", slot)
            break
        seen.add(slot)
        parts.extend(entry)
    else:  # every stored part read is the normal end; only the cap leaves some for later
        if limit == MAX_READ_PER_PASS:
            log.warning("GetNextSMS pass stopped after %d entries", MAX_READ_PER_PASS)
    return parts


def _read_slot_by_slot(sm: Any) -> list[SmsPart]:
    """Fallback when one stored message breaks GetNextSMS: read each inbox slot on its own,
    so a single corrupt PDU cannot hold every message behind it hostage. The bad slot stays
    on the SIM (nothing readable to keep) and is logged on every pass until someone clears it."""
    status = sm.GetSMSStatus()
    used = int(status.get("SIMUsed", 0)) + int(status.get("PhoneUsed", 0))
    folders = [i + 1 for i, f in enumerate(sm.GetSMSFolders()) if f.get("Inbox")]
    parts: list[SmsPart] = []
    found = 0
    for folder in folders:
        empty_run = 0
        location = 1
        while found < used and empty_run < MAX_EMPTY_SLOTS_SCANNED:
            try:
                parts.extend(sm.GetSMS(Folder=folder, Location=location))
                found += 1
                empty_run = 0
            except gammu.ERR_EMPTY:
                empty_run += 1
            except gammu.GSMError as exc:
                if type(exc).__name__ not in UNREADABLE_SLOT:
                    raise
                found += 1
                log.error(
                    "SIM folder %d slot %d cannot be read (%s); skipped, other messages go on",
                    folder,
                    location,
                    gsm_error_text(exc),
                )
            location += 1
    return parts


def read_and_link(dummy: Path | None, sm: Any) -> list[Group]:
    """One full GetNextSMS pass (slot by slot if a message is unreadable), then LinkSMS +
    DecodeSMS. ``dummy``: the dummy driver's device directory, whose files say how many parts
    are stored (none: no libGammu call at all)."""
    stored = None if dummy is None else dummy_stored(dummy)
    if stored == 0:
        return []
    try:
        parts = _read_next_pass(sm, stored)
    except gammu.GSMError as exc:
        if type(exc).__name__ not in UNREADABLE_SLOT:
            raise
        log.error(
            "reading the SIM failed (%s); falling back to slot-by-slot reads", gsm_error_text(exc)
        )
        parts = _read_slot_by_slot(sm)
    if not parts:
        return []
    try:
        linked: list[list[SmsPart]] = gammu.LinkSMS([[p] for p in parts])
    except (gammu.GSMError, ValueError, TypeError) as exc:
        log.warning("LinkSMS failed (%s); treating every part on its own", exc)
        linked = [[p] for p in parts]
    groups: list[Group] = []
    for group in linked:
        decoded: str | None = None
        if group[0].get("Coding") != "8bit" and group[0].get("Type") == "Deliver":
            try:
                info = gammu.DecodeSMS(group)
            except (gammu.GSMError, ValueError, TypeError) as exc:
                log.warning("DecodeSMS failed (%s); joining part texts", exc)
                info = None
            if info is not None:
                decoded = "".join(e.get("Buffer") or "" for e in info["Entries"])
        groups.append(Group(parts=list(group), decoded=decoded))
    return groups


def delete_all(locations: Sequence[Location], sm: Any) -> int:
    """DeleteSMS each location; one already gone (ERR_EMPTY) is fine."""
    deleted = 0
    for folder, location in locations:
        try:
            sm.DeleteSMS(Folder=folder, Location=location)
            deleted += 1
        except gammu.ERR_EMPTY:
            log.info("SMS at %s/%s was already gone", folder, location)
    return deleted


def send(part: SmsPart, sm: Any) -> Any:
    return sm.SendSMS(part)


def send_last(part: SmsPart, accepted: Callable[[Any], None], sm: Any) -> Any:
    """The last part: ``accepted`` runs on this thread the moment the modem took it."""
    ref = sm.SendSMS(part)
    accepted(ref)
    return ref


def signal_quality(sm: Any) -> dict[str, Any]:
    quality: dict[str, Any] = sm.GetSignalQuality()
    return quality
