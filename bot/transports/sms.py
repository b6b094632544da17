"""GSM modem worker: one python-gammu StateMachine per modem, owned by one dedicated thread.

Receive path (invariant 1, persist before delete): read every stored SMS (``GetNextSMS`` until
``ERR_EMPTY``), link multipart groups (``LinkSMS``), decode them (``DecodeSMS``), hand all complete
groups of one pass to ``on_receive`` in ONE call (in SMSC time order, not SIM slot order, so one
sender's texts are stored in the order they were sent), and only after it returned (= rows
committed) ``DeleteSMS`` their parts. If ``on_receive`` raises nothing is deleted; the next pass
re-reads the same messages and the dedup key (sender | SMSC time | sha256(text), invariant 2)
absorbs them. Incomplete groups stay on the SIM until ``multipart_timeout_s`` after their first
part was seen, then they are delivered with ``meta["partial"]`` and a ``[…]`` marker where parts
are missing.

Send path: libGammu's own encoder (``ConcatenatedAutoTextLong``) picks GSM-7 or UCS-2, so Bengali
never degrades to ``???``; parts go out one ``SendSMS`` at a time; errors become
``SendError(transient=…)``. No rate limiting here: ``ModemPool`` paces parts per SIM.

Threads (invariant 7): every gammu call runs on the modem's single worker thread through
``run_in_executor`` under an asyncio timeout. A call that times out leaves its thread stuck inside
libGammu; the thread is abandoned (Python cannot kill it), the modem goes ``down``, and the next
re-init starts a fresh thread and StateMachine. Watchdog: any gammu error or timeout → ``down`` →
re-``Init`` with exponential backoff (1 s … 60 s); one loud log line per state change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import gammu

from bot import redact, sim
from bot.aio import raise_if_cancelling
from bot.models import Channel, Inbound
from config.settings import ModemSettings

log = logging.getLogger(__name__)

OnReceive = Callable[[list[Inbound]], Awaitable[None]]
"""Persist the batch durably before returning; raise on failure (then nothing is deleted)."""

Pace = Callable[[], Awaitable[Any]]
# Called on the modem thread the moment the modem accepted a whole message, with (modem, reference):
# records it durably before anything else runs, so a crash cannot make it go out twice.
OnAccepted = Callable[[str, str], None]
"""Awaited before each SMS part goes out (the pool passes its per-SIM limiter here)."""

SmsPart = dict[str, Any]
T = TypeVar("T")

MAX_PARTS: Final = 50  # libGammu / handsets: a concatenated SMS has at most 50 parts here
MAX_READ_PER_PASS: Final = 2000  # guard against a driver that never says ERR_EMPTY
PARTIAL_MARKER: Final = "[…]"
REDELIVERY_WINDOW_S: Final = 24 * 3600.0  # parts re-delivered later than this are new messages
STATES: Final = ("starting", "up", "down", "reinit")

_NUMBER_RE: Final = re.compile(r"\+?[0-9]{1,40}")
_PERMANENT_ERRORS: Final = frozenset({"ERR_INVALIDDATA"})
_LINK_ERRORS: Final = frozenset(
    {
        "ERR_TIMEOUT",
        "ERR_NOTCONNECTED",
        "ERR_PHONEOFF",
        "ERR_NOSIM",
        "ERR_NOTRUNNING",
        "ERR_UNKNOWNRESPONSE",
        "ERR_FRAMENOTREQUESTED",
        "ERR_ABORTED",
        "ERR_CORRUPTED",
        "ERR_WRONGCRC",
        "ERR_NOECHO",
    }
)
_UNSUPPORTED: Final = frozenset({"ERR_NOTSUPPORTED", "ERR_NOTIMPLEMENTED"})
_ERRORS_BEFORE_REINIT: Final = 5  # consecutive non-link send errors that force a re-init


class SendError(Exception):
    """A send failed. ``transient``: another attempt (later, or on another modem) may succeed."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient

    def __str__(self) -> str:
        kind = "transient" if self.transient else "permanent"
        return f"{kind}: {self.reason}"


class ModemError(Exception):
    """The modem failed (gammu error or timeout); it is ``down`` until the watchdog re-inits it."""


class ReceiveHandlerError(Exception):
    """``on_receive`` raised; nothing was deleted from the SIM. The cause is chained."""


@dataclass(frozen=True, slots=True)
class ModemHealth:
    name: str
    state: str  # "starting" | "up" | "down" | "reinit"
    signal_percent: int | None
    last_ok_at: float | None
    last_error: str | None
    consecutive_errors: int
    received: int
    sent: int
    pending_parts: int


def mask_number(number: str) -> str:
    """Phone numbers in logs keep only their last 3 digits."""
    return "***" + number[-3:] if len(number) > 3 else "***"


def gsm_error_text(exc: BaseException) -> str:
    """``ERR_TIMEOUT in GetNextSMS: No response in specified timeout.`` from a gammu.GSMError."""
    info = exc.args[0] if exc.args else None
    if isinstance(info, Mapping):
        return f"{type(exc).__name__} in {info.get('Where', '?')}: {info.get('Text', '')}"
    return f"{type(exc).__name__}: {exc}"


_UNSENDABLE: Final = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def sendable_text(text: str) -> str:
    """Control characters (except CR/LF) become spaces before encoding.

    Measured with libGammu 1.45.1: NUL ends the C string (the rest of the message is lost),
    U+0001 reaches the handset as ``~``, TAB forces UCS-2 (3x the parts) and none of them
    display on a phone. Everything else, Bengali and emoji included, goes through unchanged."""
    return _UNSENDABLE.sub(" ", text)


def encode_text(text: str) -> list[SmsPart]:
    """Split ``text`` into SMS-SUBMIT parts; libGammu chooses GSM-7 or UCS-2 (pure, no phone)."""
    parts: list[SmsPart] = gammu.EncodeSMS(
        {
            "Class": -1,
            "Entries": [{"ID": "ConcatenatedAutoTextLong", "Buffer": sendable_text(text)}],
        }
    )
    return parts


def count_parts(text: str) -> int:
    """How many SMS ``text`` needs (what operators count against the per-SIM rate)."""
    return len(encode_text(text))


def _sha256(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def dedup_key(number: str, smsc_time_iso: str, payload: str) -> str:
    """Invariant 2: sender + SMSC timestamp + text hash; stable across re-reads of the SIM."""
    return _sha256(f"{number}|{smsc_time_iso}|{_sha256(payload)}")


# ----------------------------------------------------------------------------- receive helpers


@dataclass(slots=True)
class _Group:
    """One LinkSMS group as read in the worker thread."""

    parts: list[SmsPart]
    decoded: str | None  # DecodeSMS text when available

    @property
    def first(self) -> SmsPart:
        return self.parts[0]

    @property
    def all_parts(self) -> int:
        udh = self.first.get("UDH") or {}
        n = int(udh.get("AllParts", -1) or -1)
        return n if n > 1 else 1

    @property
    def part_numbers(self) -> dict[int, SmsPart]:
        """PartNumber → part (first copy wins; duplicates from a double receive are dropped)."""
        found: dict[int, SmsPart] = {}
        for p in self.parts:
            udh = p.get("UDH") or {}
            num = int(udh.get("PartNumber", -1) or -1)
            found.setdefault(num if num > 0 else 1, p)
        return found

    @property
    def key(self) -> tuple[str, int, int, int]:
        udh = self.first.get("UDH") or {}
        return (
            str(self.first.get("Number", "")),
            int(udh.get("ID8bit", -1)),
            int(udh.get("ID16bit", -1)),
            self.all_parts,
        )

    @property
    def complete(self) -> bool:
        return set(range(1, self.all_parts + 1)) <= set(self.part_numbers)

    @property
    def locations(self) -> list[tuple[int, int]]:
        return [(int(p["Folder"]), int(p["Location"])) for p in self.parts]


@dataclass(slots=True)
class _Pass:
    batch: list[Inbound] = field(default_factory=list)
    delete: list[tuple[int, int]] = field(default_factory=list)
    delivered_keys: set[tuple[str, int, int, int]] = field(default_factory=set)
    delivered_parts: dict[tuple[str, int, int, int], dict[int, Any]] = field(default_factory=dict)
    pending: int = 0


# Errors that mean "this stored message cannot be parsed", not "the modem is broken".
_UNREADABLE_SLOT: Final = (
    "ERR_FILENOTSUPPORTED",
    "ERR_CORRUPTED",
    "ERR_UNKNOWNRESPONSE",
    "ERR_NOTSUPPORTED",
    "ERR_INVALIDDATA",
    "ERR_BUG",
)
MAX_EMPTY_SLOTS_SCANNED: Final = 64


def _read_next_pass(sm: Any) -> list[SmsPart]:
    parts: list[SmsPart] = []
    seen: set[tuple[int, int]] = set()
    location = 0
    for i in range(MAX_READ_PER_PASS):
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
    else:
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
                if type(exc).__name__ not in _UNREADABLE_SLOT:
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


def _read_and_link(sm: Any) -> list[_Group]:
    """Worker thread: one full GetNextSMS pass (slot by slot if a message is unreadable),
    then LinkSMS + DecodeSMS."""
    try:
        parts = _read_next_pass(sm)
    except gammu.GSMError as exc:
        if type(exc).__name__ not in _UNREADABLE_SLOT:
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
    groups: list[_Group] = []
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
        groups.append(_Group(parts=list(group), decoded=decoded))
    return groups


def _merge_incomplete(groups: list[_Group]) -> list[_Group]:
    """LinkSMS leaves non-adjacent parts (1 and 3 of 3) in separate groups: join them by key."""
    merged: list[_Group] = []
    by_key: dict[tuple[str, int, int, int], _Group] = {}
    for g in groups:
        if g.first.get("Type") != "Deliver" or g.complete or g.all_parts <= 1:
            merged.append(g)
            continue
        into = by_key.get(g.key)
        if into is not None and not set(into.part_numbers) & set(g.part_numbers):
            into.parts.extend(g.parts)
            into.parts.sort(key=lambda p: int((p.get("UDH") or {}).get("PartNumber", 0) or 0))
            into.decoded = None  # DecodeSMS saw only a piece: join part texts instead
            continue
        by_key.setdefault(g.key, g)
        merged.append(g)
    return merged


def _delete_all(sm: Any, locations: Sequence[tuple[int, int]]) -> int:
    """Worker thread: DeleteSMS each location; one already gone (ERR_EMPTY) is fine."""
    deleted = 0
    for folder, location in locations:
        try:
            sm.DeleteSMS(Folder=folder, Location=location)
            deleted += 1
        except gammu.ERR_EMPTY:
            log.info("SMS at %s/%s was already gone", folder, location)
    return deleted


def _arrival_order(g: _Group) -> tuple[float, tuple[int, int]]:
    """Sort key of a group within one read pass: SMSC time, then SIM slot.

    The SIM stores a new SMS in the lowest free slot, so after deletes a later message can sit
    before an earlier one; reading in slot order would store one sender's texts out of order."""
    numbered = g.part_numbers
    stamp = numbered[min(numbered)].get("DateTime")
    when = stamp.timestamp() if isinstance(stamp, datetime) else math.inf
    return when, min(g.locations)


def _smsc_iso(part: Mapping[str, Any]) -> str:
    # For SMS-DELIVER, gammu's "DateTime" is the SMSC timestamp (TP-SCTS); "SMSCDateTime" is only
    # meaningful in status reports (the dummy even fills it with "now", which would break dedup).
    stamp = part.get("DateTime")
    return stamp.isoformat() if isinstance(stamp, datetime) else ""


# ----------------------------------------------------------------------------- the modem


@dataclass(slots=True)
class _Counters:
    state: str = "starting"
    signal_percent: int | None = None
    last_ok_at: float | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    received: int = 0
    sent: int = 0
    pending_parts: int = 0
    first_seen: dict[tuple[str, int, int, int], float] = field(default_factory=dict)
    # Parts of recently delivered multipart SMS: a part the network delivers again later is a
    # duplicate, not a new (partial) message. Kept REDELIVERY_WINDOW_S, in memory.
    recent_parts: dict[tuple[str, int, int, int], tuple[float, dict[int, Any]]] = field(
        default_factory=dict
    )


class Modem:
    """One GSM modem (or dummy phone): poll loop, multipart reassembly, sends, watchdog."""

    def __init__(
        self,
        settings: ModemSettings,
        on_receive: OnReceive,
        *,
        clock: Callable[[], float] = time.time,
        call_timeout_s: float = 30.0,
        read_timeout_s: float = 120.0,
        init_timeout_s: float = 60.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        signal_every_s: float = 60.0,
        receive_timeout_s: float = 60.0,
    ) -> None:
        self._settings = settings
        self._on_receive = on_receive
        self._clock = clock
        self._call_timeout_s = call_timeout_s
        self._read_timeout_s = read_timeout_s
        self._init_timeout_s = init_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._signal_every_s = signal_every_s
        self._receive_timeout_s = receive_timeout_s
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._sm: Any = None  # gammu.StateMachine, touched only on the worker thread
        self._generation = 0  # bumped on every (re)init: calls never cross StateMachines
        self._c = _Counters()
        self._poll_lock = asyncio.Lock()
        self._conn_lock = asyncio.Lock()
        self._closed = False
        self._abandoned_threads = 0

    # -- public -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def settings(self) -> ModemSettings:
        return self._settings

    @property
    def health(self) -> ModemHealth:
        c = self._c
        return ModemHealth(
            name=self.name,
            state=c.state,
            signal_percent=c.signal_percent,
            last_ok_at=c.last_ok_at,
            last_error=c.last_error,
            consecutive_errors=c.consecutive_errors,
            received=c.received,
            sent=c.sent,
            pending_parts=c.pending_parts,
        )

    async def run(self) -> None:
        """Init, then poll forever. Errors never escape: the modem goes down and re-inits."""
        next_signal = 0.0
        while not self._closed:
            raise_if_cancelling()
            if self._c.state != "up":
                if self._c.consecutive_errors:
                    await asyncio.sleep(self._backoff(self._c.consecutive_errors))
                    if self._closed:
                        return
                try:
                    await self._connect()
                except ModemError:
                    continue  # _connect logged the state change with the reason
                next_signal = 0.0
            try:
                await self.poll_once()
            except ModemError:
                continue
            except ReceiveHandlerError:
                pass  # logged in poll_once; the SMS stay on the SIM for the next pass
            if time.monotonic() >= next_signal:
                await self._refresh_signal()
                next_signal = time.monotonic() + self._signal_every_s
            await asyncio.sleep(self._settings.poll_interval_s)

    async def poll_once(self) -> int:
        """One full read pass; returns how many messages were handed to ``on_receive``.

        Raises ModemError when the modem fails (state → down) and ReceiveHandlerError when
        ``on_receive`` raised (nothing deleted)."""
        async with self._poll_lock:
            if self._c.state != "up":
                await self._connect()
            generation = self._generation
            try:
                groups = await self._call(_read_and_link, self._read_timeout_s, "read SMS")
            except gammu.GSMError as exc:
                raise self._link_failed(gsm_error_text(exc)) from exc
            result = self._classify(groups)
            batch, delete = result.batch, result.delete
            if batch:
                try:
                    # A hung store must not stall the modem forever; if the commit did happen
                    # after all, nothing was deleted and the dedup key absorbs the re-read.
                    async with asyncio.timeout(self._receive_timeout_s):
                        await self._on_receive(batch)
                except Exception as exc:
                    self._c.last_error = f"on_receive failed: {exc!r}"
                    log.exception(
                        "modem %s: storing %d received SMS failed; leaving them on the SIM",
                        self.name,
                        len(batch),
                    )
                    raise ReceiveHandlerError(str(exc)) from exc
            if delete:
                if generation != self._generation:
                    raise self._link_failed("modem re-initialised before delete")
                try:
                    await self._call(
                        partial(_delete_all_bound, delete), self._call_timeout_s, "delete"
                    )
                except gammu.GSMError as exc:
                    # Rows are committed: the undeleted SMS will be re-read and deduplicated.
                    raise self._link_failed(gsm_error_text(exc)) from exc
            for key in result.delivered_keys:
                self._c.first_seen.pop(key, None)
            now = self._clock()
            recent = self._c.recent_parts
            for key, texts in result.delivered_parts.items():
                recent[key] = (now, texts)
            for key in [k for k, (at, _) in recent.items() if now - at > REDELIVERY_WINDOW_S]:
                del recent[key]
            self._c.received += len(batch)
            self._c.pending_parts = result.pending
            self._ok()
            return len(batch)

    async def send(
        self,
        to: str,
        text: str,
        *,
        idem_key: str,
        pace: Pace | None = None,
        on_accepted: OnAccepted | None = None,
    ) -> str:
        """Send ``text`` (all parts) to ``to``; returns ``"<modem>:<ref>[,<ref>…]"``."""
        number = to.strip()
        if not _NUMBER_RE.fullmatch(number):
            raise SendError(f"invalid number {mask_number(number)!r}", transient=False)
        if not text:
            raise SendError("empty text", transient=False)
        if self._closed:
            raise SendError(f"modem {self.name} is closed", transient=True)
        if self._c.state == "starting":
            try:
                await self._connect()
            except ModemError as exc:
                raise SendError(str(exc), transient=True) from exc
        if self._c.state != "up":
            raise SendError(f"modem {self.name} is {self._c.state}", transient=True)
        try:
            parts = await asyncio.to_thread(encode_text, text)
        except (gammu.GSMError, ValueError, TypeError) as exc:
            raise SendError(f"cannot encode text: {exc}", transient=False) from exc
        if len(parts) > MAX_PARTS:
            raise SendError(f"text needs {len(parts)} SMS (max {MAX_PARTS})", transient=False)
        smsc: dict[str, Any] = (
            {"Location": 0, "Number": self._settings.smsc}
            if self._settings.smsc
            else {"Location": 1}
        )
        coding = str(parts[0].get("Coding", "?"))
        generation = self._generation
        refs: list[str] = []
        for i, part in enumerate(parts):
            part["SMSC"] = smsc
            part["Number"] = number
            if pace is not None:
                await pace()
            if generation != self._generation or self._c.state != "up":
                raise SendError(
                    f"modem {self.name} went {self._c.state} after {i}/{len(parts)} parts",
                    transient=True,
                )
            send: Callable[[Any], Any] = partial(_send_bound, part)
            if i == len(parts) - 1:
                send = partial(
                    _send_last_bound,
                    part,
                    partial(self._accepted, parts, idem_key, refs, on_accepted),
                )
            try:
                ref = await self._call(send, self._call_timeout_s, "SendSMS")
            except ModemError as exc:
                raise SendError(f"{exc} after {i}/{len(parts)} parts", transient=True) from exc
            except gammu.GSMError as exc:
                raise self._send_failed(exc, i, len(parts)) from exc
            refs.append(str(ref))
        self._c.sent += 1
        self._ok()
        log.info(
            "modem %s: sent SMS to %s (%d part%s, %s)",
            self.name,
            mask_number(number),
            len(parts),
            "" if len(parts) == 1 else "s",
            coding,
        )
        log.debug(
            "modem %s: sent body to %s: %s", self.name, mask_number(number), redact.body(text)
        )
        return f"{self.name}:{','.join(refs)}"

    def _accepted(
        self,
        parts: list[SmsPart],
        idem_key: str,
        refs: list[str],
        on_accepted: OnAccepted | None,
        last_ref: Any,
    ) -> None:
        """Modem thread, right after the last part was accepted: the dummy shows the message to
        the simulated network, then `on_accepted` records it. Never raises: it WAS sent."""
        if self._settings.is_dummy:
            device = Path(self._settings.device)
            try:
                sim.write_sent(device, parts, key=idem_key, when=self._clock())
            except (OSError, gammu.GSMError) as exc:
                log.error("modem %s: could not record sent SMS in %s: %s", self.name, device, exc)
        if on_accepted is not None:
            reference = f"{self.name}:{','.join([*refs, str(last_ref)])}"
            try:
                on_accepted(self.name, reference)
            except Exception:  # the caller's own commit after send() still runs
                log.exception("modem %s: recording an accepted SMS failed", self.name)

    async def close(self) -> None:
        """Terminate the StateMachine and stop the thread; bounded by a timeout, never hangs."""
        if self._closed:
            return
        self._closed = True
        executor, sm = self._executor, self._sm
        self._executor, self._sm = None, None
        self._generation += 1
        if executor is not None:
            if sm is not None:
                loop = asyncio.get_running_loop()
                try:
                    await asyncio.wait_for(
                        loop.run_in_executor(executor, sm.Terminate),
                        min(self._call_timeout_s, 10.0),
                    )
                except TimeoutError:
                    log.error("modem %s: Terminate timed out; abandoning its thread", self.name)
                except gammu.GSMError as exc:
                    log.warning("modem %s: Terminate failed: %s", self.name, gsm_error_text(exc))
            executor.shutdown(wait=False, cancel_futures=True)
        self._set_state("down", "closed")

    # -- internals ----------------------------------------------------------------------------

    def _backoff(self, errors: int) -> float:
        delay: float = self._backoff_initial_s * 2.0 ** max(errors - 1, 0)
        return min(delay, self._backoff_max_s)

    def _set_state(self, state: str, reason: str = "") -> None:
        old = self._c.state
        if state == old:
            return
        self._c.state = state
        suffix = f": {reason}" if reason else ""
        if state == "down" and self._closed:
            log.info("modem %s: %s -> down%s", self.name, old, suffix)
        elif state == "down":
            retry = ""
            if not self._closed:
                retry = f" (re-init in {self._backoff(self._c.consecutive_errors):.1f} s)"
            log.error("modem %s: %s -> DOWN%s%s", self.name, old, suffix, retry)
        elif state == "reinit":
            log.warning(
                "modem %s: %s -> reinit (attempt after %d error%s)",
                self.name,
                old,
                self._c.consecutive_errors,
                "" if self._c.consecutive_errors == 1 else "s",
            )
        elif state == "up" and old != "starting":
            log.warning("modem %s: %s -> UP again%s", self.name, old, suffix)
        else:
            log.info("modem %s: %s -> %s%s", self.name, old, state, suffix)

    def _ok(self) -> None:
        self._c.last_ok_at = self._clock()
        self._c.consecutive_errors = 0

    def _fail(self, reason: str) -> None:
        self._c.last_error = reason
        self._c.consecutive_errors += 1

    def _link_failed(self, reason: str) -> ModemError:
        """Record a modem failure, go down (the watchdog re-inits) and return the error to raise."""
        self._fail(reason)
        self._set_state("down", reason)
        return ModemError(f"modem {self.name}: {reason}")

    def _send_failed(self, exc: BaseException, sent: int, total: int) -> SendError:
        name = type(exc).__name__
        reason = f"{gsm_error_text(exc)} after {sent}/{total} parts"
        if name in _PERMANENT_ERRORS:
            log.warning("modem %s: send rejected permanently: %s", self.name, reason)
            return SendError(reason, transient=False)
        if name in _LINK_ERRORS or name.startswith("ERR_DEVICE"):
            self._link_failed(reason)
        else:
            self._fail(reason)
            log.warning("modem %s: send failed: %s", self.name, reason)
            if self._c.consecutive_errors >= _ERRORS_BEFORE_REINIT:
                self._set_state("down", f"{self._c.consecutive_errors} errors in a row")
        return SendError(reason, transient=True)

    async def _call(self, fn: Callable[[Any], T], limit_s: float, what: str) -> T:
        """Run ``fn(state_machine)`` on the modem thread with a timeout."""
        executor, sm = self._executor, self._sm
        if executor is None or sm is None:
            raise self._link_failed(f"{what}: not connected")
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(executor, fn, sm), limit_s)
        except TimeoutError:
            self._abandon_thread(what)
            raise self._link_failed(f"{what} timed out after {limit_s:g} s") from None
        except asyncio.CancelledError:
            raise_if_cancelling()
            # Not our cancellation: the call waited behind a stuck one whose thread was
            # abandoned (its queue is cancelled). A link failure, so a send fails over.
            raise self._link_failed(f"{what}: modem thread abandoned") from None

    def _abandon_thread(self, what: str) -> None:
        executor = self._executor
        self._executor, self._sm = None, None
        self._generation += 1
        self._abandoned_threads += 1
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        log.error(
            "modem %s: gammu thread stuck in %s; abandoned it (%d so far); re-init uses a new one",
            self.name,
            what,
            self._abandoned_threads,
        )

    def _gammu_config(self) -> dict[str, str]:
        s = self._settings
        return {"Model": s.model, "Connection": s.connection, "Device": s.device}

    async def _connect(self) -> None:
        """One Init attempt (serialised). Raises ModemError and leaves the state ``down``."""
        async with self._conn_lock:
            if self._c.state == "up":
                return
            if self._closed:
                raise ModemError(f"modem {self.name} is closed")
            if self._c.state == "down":
                self._set_state("reinit")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"modem-{self.name}"
                )
            executor, old = self._executor, self._sm
            self._sm = None
            self._generation += 1
            init = partial(_init_state_machine, self._gammu_config(), self._settings.is_dummy, old)
            loop = asyncio.get_running_loop()
            try:
                sm = await asyncio.wait_for(
                    loop.run_in_executor(executor, init), self._init_timeout_s
                )
            except TimeoutError:
                self._abandon_thread("Init")
                raise self._link_failed(
                    f"Init timed out after {self._init_timeout_s:g} s"
                ) from None
            except gammu.GSMError as exc:
                raise self._link_failed(gsm_error_text(exc)) from exc
            except OSError as exc:
                raise self._link_failed(f"device {self._settings.device}: {exc}") from exc
            self._sm = sm
            self._set_state("up", f"{self._settings.model or 'auto'} on {self._settings.device}")

    async def _refresh_signal(self) -> None:
        try:
            quality = await self._call(_signal_bound, self._call_timeout_s, "GetSignalQuality")
        except ModemError:
            return
        except gammu.GSMError as exc:
            if type(exc).__name__ in _UNSUPPORTED:
                self._c.signal_percent = None
                return
            name = type(exc).__name__
            if name in _LINK_ERRORS or name.startswith("ERR_DEVICE"):
                self._link_failed(gsm_error_text(exc))
            else:
                log.warning("modem %s: signal query failed: %s", self.name, gsm_error_text(exc))
            return
        percent = quality.get("SignalPercent")
        self._c.signal_percent = int(percent) if isinstance(percent, int) and percent >= 0 else None

    def _classify(self, groups: list[_Group]) -> _Pass:
        """Split one pass into the batch to deliver, what to delete after commit, what waits."""
        now = self._clock()
        timeout = self._settings.multipart_timeout_s
        out = _Pass()
        batch, delete = out.batch, out.delete
        seen: set[tuple[str, int, int, int]] = set()
        complete_texts: dict[tuple[str, int, int, int], dict[int, Any]] = {}
        for g in groups:
            if g.first.get("Type") == "Deliver" and g.complete:
                complete_texts.setdefault(g.key, {}).update(
                    {n: p.get("Text") for n, p in g.part_numbers.items()}
                )
        first_seen = self._c.first_seen
        for g in sorted(_merge_incomplete(groups), key=_arrival_order):
            kind = g.first.get("Type")
            who = mask_number(str(g.first.get("Number", "")))
            if kind != "Deliver":
                log.info(
                    "modem %s: %s from %s (ref %s) is not a message; deleting it",
                    self.name,
                    kind,
                    who,
                    g.first.get("MessageReference"),
                )
                delete.extend(g.locations)
                continue
            seen.add(g.key)
            texts = {n: p.get("Text") for n, p in g.part_numbers.items()}
            if g.complete:
                batch.append(self._inbound(g, partial=False))
                delete.extend(g.locations)
                out.delivered_keys.add(g.key)
                out.delivered_parts[g.key] = texts
                continue
            earlier = self._c.recent_parts.get(g.key)
            twin = complete_texts.get(g.key) or (earlier[1] if earlier else None)
            if twin is not None and all(twin.get(n) == t for n, t in texts.items()):
                log.info("modem %s: duplicate part(s) from %s; deleting", self.name, who)
                delete.extend(g.locations)
                continue
            seen_at = first_seen.setdefault(g.key, now)
            if g.all_parts > MAX_PARTS:
                log.warning(
                    "modem %s: SMS from %s claims %d parts (max %d); delivering what is there",
                    self.name,
                    who,
                    g.all_parts,
                    MAX_PARTS,
                )
            elif now - seen_at < timeout:
                out.pending += len(g.parts)
                log.debug(
                    "modem %s: waiting for parts of SMS from %s (%d/%d)",
                    self.name,
                    who,
                    len(g.part_numbers),
                    g.all_parts,
                )
                continue
            batch.append(self._inbound(g, partial=True))
            delete.extend(g.locations)
            out.delivered_keys.add(g.key)
            out.delivered_parts[g.key] = texts
        for key in list(first_seen):
            if key not in seen:  # gone from the SIM (deleted elsewhere): forget it
                del first_seen[key]
        return out

    def _inbound(self, g: _Group, *, partial: bool) -> Inbound:
        numbered = g.part_numbers
        first = numbered[min(numbered)]
        number = str(first.get("Number", ""))
        smsc_time = _smsc_iso(first)
        coding = str(first.get("Coding", ""))
        meta: dict[str, Any] = {
            "modem": self.name,
            "parts": len(numbered),
            "coding": coding,
            "smsc_time": smsc_time,
        }
        if any(p.get("Coding") == "8bit" for p in g.parts):
            payload = b"".join(
                p["Text"] for p in numbered.values() if isinstance(p.get("Text"), bytes)
            )
            text = ""
            hash_source = "8bit:" + payload.hex()
            meta["binary"] = True
            meta["bytes"] = len(payload)
        else:
            if partial:
                pieces = [
                    str(numbered[n].get("Text") or "") if n in numbered else PARTIAL_MARKER
                    for n in range(1, min(g.all_parts, max(numbered)) + 1)
                ]
                if g.all_parts > max(numbered):
                    pieces.append(PARTIAL_MARKER)
                text = "".join(pieces)
                meta["partial"] = True
                meta["expected_parts"] = g.all_parts
                meta["missing_parts"] = [
                    n for n in range(1, min(g.all_parts, MAX_PARTS) + 1) if n not in numbered
                ]
            elif g.decoded is not None:
                text = g.decoded
            else:
                text = "".join(str(numbered[n].get("Text") or "") for n in sorted(numbered))
            # Real modems: gammu sizes GSM-7 text in septets, so escaped chars leave NULs.
            text = text.replace("\x00", "")
            hash_source = text
            if not text.strip():
                meta["empty"] = True
        flags = [f for f in ("partial", "binary", "empty") if meta.get(f)]
        log.info(
            "modem %s: SMS from %s (%d part%s, %s%s)",
            self.name,
            mask_number(number),
            len(numbered),
            "" if len(numbered) == 1 else "s",
            coding,
            "".join(f", {f}" for f in flags),
        )
        log.debug("modem %s: body from %s: %s", self.name, mask_number(number), redact.body(text))
        return Inbound(
            channel=Channel.SMS,
            peer=number,
            conversation=number,
            text=text,
            dedup_key=dedup_key(number, smsc_time, hash_source),
            received_at=self._clock(),
            meta=meta,
        )


# ----------------------------------------------------------------------------- worker-thread bodies


def _init_state_machine(config: dict[str, str], is_dummy: bool, old: Any) -> Any:
    if old is not None:
        with contextlib.suppress(gammu.GSMError):
            old.Terminate()
    if is_dummy:
        Path(config["Device"]).mkdir(parents=True, exist_ok=True)
    sm = gammu.StateMachine()
    sm.SetConfig(0, config)
    sm.Init()
    return sm


def _delete_all_bound(locations: Sequence[tuple[int, int]], sm: Any) -> int:
    return _delete_all(sm, locations)


def _send_bound(part: SmsPart, sm: Any) -> Any:
    return sm.SendSMS(part)


def _send_last_bound(part: SmsPart, accepted: Callable[[Any], None], sm: Any) -> Any:
    ref = sm.SendSMS(part)
    accepted(ref)
    return ref


def _signal_bound(sm: Any) -> dict[str, Any]:
    quality: dict[str, Any] = sm.GetSignalQuality()
    return quality
