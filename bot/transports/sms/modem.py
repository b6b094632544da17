"""GSM modem worker: one python-gammu StateMachine per modem, owned by one dedicated thread.

Receive path (invariant 1, persist before delete): read every stored SMS (``GetNextSMS`` until
``ERR_EMPTY``; on the dummy driver exactly as many as its files, docs/facts.md), link multipart
groups (``LinkSMS``), decode them (``DecodeSMS``), hand all complete groups of one pass to
``on_receive`` in ONE call (in SMSC time order, not SIM slot order, so one sender's texts are stored
in the order they were sent), and only after it returned (= rows committed) ``DeleteSMS`` their
parts. If ``on_receive`` raises nothing is deleted; the next pass re-reads the same messages and the
dedup key (sender | SMSC time | sha256(text), invariant 2) absorbs them. Incomplete groups stay on
the SIM until ``multipart_timeout_s`` after their first part was seen, then they are delivered with
``facts.partial`` and a ``[…]`` marker where parts are missing (the decisions are
``reassembly.Reassembler``'s).

Send path: parts go out one ``SendSMS`` at a time; errors become ``TransientSendError`` or
``PermanentSendError``. No rate limiting here: ``ModemPool`` paces parts per SIM. A simulated
network that wants to see what was sent (drills, tests) is injected as ``record_sent``.

Threads (invariant 7): every gammu call runs on the modem's single worker thread through
``run_in_executor`` under an asyncio timeout. A call that times out leaves its thread stuck inside
libGammu; the thread is abandoned (Python cannot kill it), the modem goes ``down``, and the next
re-init starts a fresh thread and StateMachine. Watchdog: any gammu error or timeout → ``down`` →
re-``Init`` with exponential backoff (1 s … 60 s); one loud log line per state change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import gammu

from bot import redact
from bot.aio import raise_if_cancelling
from bot.models import Inbound
from bot.transports.sms import thread as calls
from bot.transports.sms.codec import MAX_PARTS, SmsPart, encode_text, valid_number
from bot.transports.sms.errors import (
    PERMANENT_SEND_ERRORS,
    UNSUPPORTED,
    ModemError,
    PermanentSendError,
    ReceiveHandlerError,
    SendError,
    TransientSendError,
    gsm_error_text,
    is_link_error,
)
from bot.transports.sms.health import ModemHealth, ModemState
from bot.transports.sms.reassembly import Plan, Reassembler, Verdict, to_inbound
from bot.transports.sms.thread import GammuThread, NotConnected
from config.settings import ModemSettings

log = logging.getLogger(__name__)

OnReceive = Callable[[list[Inbound]], Awaitable[None]]
"""Persist the batch durably before returning; raise on failure (then nothing is deleted)."""

Pace = Callable[[], Awaitable[Any]]
"""Awaited before each SMS part goes out (the pool passes its per-SIM limiter here)."""

# Called on the modem thread the moment the modem accepted a whole message, with (modem, reference):
# records it durably before anything else runs, so a crash cannot make it go out twice.
OnAccepted = Callable[[str, str], None]

# Called on the modem thread with (encoded parts, idem_key, unix time) for each accepted message;
# blocking I/O is fine there. The drill composition passes the simulator's sent-SMS log for dummy
# modems (the dummy driver keeps no copy of what it sent).
RecordSent = Callable[[Sequence[SmsPart], str, float], object]

T = TypeVar("T")


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
        record_sent: RecordSent | None = None,
    ) -> None:
        self._settings = settings
        self._on_receive = on_receive
        self._clock = clock
        self._call_timeout_s = call_timeout_s
        self._read_timeout_s = read_timeout_s
        self._init_timeout_s = init_timeout_s
        self._signal_every_s = signal_every_s
        self._receive_timeout_s = receive_timeout_s
        self._record_sent = record_sent
        self._thread = GammuThread(settings.name)
        self._c = ModemState(
            settings.name, clock, backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s
        )
        self._reassembler = Reassembler(settings.multipart_timeout_s)
        self._poll_lock = asyncio.Lock()
        self._conn_lock = asyncio.Lock()

    # -- public -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._settings.name

    @property
    def settings(self) -> ModemSettings:
        return self._settings

    @property
    def health(self) -> ModemHealth:
        return self._c.snapshot()

    async def run(self) -> None:
        """Init, then poll forever. Errors never escape: the modem goes down and re-inits."""
        next_signal = 0.0
        while not self._c.closed:
            raise_if_cancelling()
            if self._c.state != "up":
                if self._c.consecutive_errors:
                    await asyncio.sleep(self._c.reinit_delay())
                    if self._c.closed:
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
            generation = self._thread.generation
            try:
                groups = await self._call(
                    partial(calls.read_and_link, self._dummy_device()),
                    self._read_timeout_s,
                    "read SMS",
                )
            except gammu.GSMError as exc:
                raise self._link_failed(gsm_error_text(exc)) from exc
            plan = self._reassembler.plan(groups, self._clock())
            batch = self._batch(plan)
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
            if plan.delete:
                if generation != self._thread.generation:
                    raise self._link_failed("modem re-initialised before delete")
                try:
                    await self._call(
                        partial(calls.delete_all, plan.delete),
                        self._call_timeout_s,
                        "delete",
                    )
                except gammu.GSMError as exc:
                    # Rows are committed: the undeleted SMS will be re-read and deduplicated.
                    raise self._link_failed(gsm_error_text(exc)) from exc
            self._reassembler.delivered(plan, self._clock())
            self._c.received += len(batch)
            self._c.pending_parts = plan.pending
            self._c.ok()
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
        if not valid_number(number):
            raise PermanentSendError(f"invalid number {redact.mask_peer(number)!r}")
        if not text:
            raise PermanentSendError("empty text")
        if self._c.closed:
            raise TransientSendError(f"modem {self.name} is closed")
        if self._c.state == "starting":
            try:
                await self._connect()
            except ModemError as exc:
                raise TransientSendError(str(exc)) from exc
        if self._c.state != "up":
            raise TransientSendError(f"modem {self.name} is {self._c.state}")
        try:
            parts = await asyncio.to_thread(encode_text, text)
        except (gammu.GSMError, ValueError, TypeError) as exc:
            raise PermanentSendError(f"cannot encode text: {exc}") from exc
        if len(parts) > MAX_PARTS:
            raise PermanentSendError(f"text needs {len(parts)} SMS (max {MAX_PARTS})")
        smsc: dict[str, Any] = (
            {"Location": 0, "Number": self._settings.smsc}
            if self._settings.smsc
            else {"Location": 1}
        )
        coding = str(parts[0].get("Coding", "?"))
        generation = self._thread.generation
        refs: list[str] = []
        for i, part in enumerate(parts):
            part["SMSC"] = smsc
            part["Number"] = number
            if pace is not None:
                await pace()
            if generation != self._thread.generation or self._c.state != "up":
                raise TransientSendError(
                    f"modem {self.name} went {self._c.state} after {i}/{len(parts)} parts"
                )
            send: Callable[[Any], Any] = partial(calls.send, part)
            if i == len(parts) - 1:
                accepted = partial(self._accepted, parts, idem_key, refs, on_accepted)
                send = partial(calls.send_last, part, accepted)
            try:
                ref = await self._call(send, self._call_timeout_s, "SendSMS")
            except ModemError as exc:
                raise TransientSendError(f"{exc} after {i}/{len(parts)} parts") from exc
            except gammu.GSMError as exc:
                raise self._send_failed(exc, i, len(parts)) from exc
            refs.append(str(ref))
        self._c.sent += 1
        self._c.ok()
        log.info(
            "modem %s: sent SMS to %s (%d part%s, %s)",
            self.name,
            redact.mask_peer(number),
            len(parts),
            "" if len(parts) == 1 else "s",
            coding,
        )
        log.debug(
            "modem %s: sent body to %s: %s", self.name, redact.mask_peer(number), redact.body(text)
        )
        return f"{self.name}:{','.join(refs)}"

    async def close(self) -> None:
        """Terminate the StateMachine and stop the thread; bounded by a timeout, never hangs."""
        if self._c.closed:
            return
        self._c.closed = True
        await self._thread.stop(min(self._call_timeout_s, 10.0))
        self._c.set("down", "closed")

    # -- receive ------------------------------------------------------------------------------

    def _batch(self, plan: Plan) -> list[Inbound]:
        """The messages of one pass, in arrival order, logging each decision once."""
        batch: list[Inbound] = []
        for decision in plan.decisions:
            g, verdict = decision.group, decision.verdict
            who = redact.mask_peer(str(g.first.get("Number", "")))
            if verdict is Verdict.NOT_A_MESSAGE:
                log.info(
                    "modem %s: %s from %s (ref %s) is not a message; deleting it",
                    self.name,
                    g.first.get("Type"),
                    who,
                    g.first.get("MessageReference"),
                )
            elif verdict is Verdict.DUPLICATE:
                log.info("modem %s: duplicate part(s) from %s; deleting", self.name, who)
            elif verdict is Verdict.WAITING:
                log.debug(
                    "modem %s: waiting for parts of SMS from %s (%d/%d)",
                    self.name,
                    who,
                    len(g.part_numbers),
                    g.all_parts,
                )
            else:
                if verdict is Verdict.OVERSIZED:
                    log.warning(
                        "modem %s: SMS from %s claims %d parts (max %d); delivering what is there",
                        self.name,
                        who,
                        g.all_parts,
                        MAX_PARTS,
                    )
                partial_ = verdict is not Verdict.COMPLETE
                msg = to_inbound(g, partial=partial_, modem=self.name, received_at=self._clock())
                self._log_received(msg)
                batch.append(msg)
        return batch

    def _log_received(self, msg: Inbound) -> None:
        parts = int(msg.meta["parts"])
        seen = {"partial": msg.facts.partial, "binary": msg.facts.binary, "empty": msg.facts.empty}
        flags = "".join(f", {f}" for f, on in seen.items() if on)
        who = redact.mask_peer(msg.peer)
        log.info(
            "modem %s: SMS from %s (%d part%s, %s%s)",
            self.name,
            who,
            parts,
            "" if parts == 1 else "s",
            msg.meta["coding"],
            flags,
        )
        log.debug("modem %s: body from %s: %s", self.name, who, redact.body(msg.text))

    # -- send ---------------------------------------------------------------------------------

    def _accepted(
        self,
        parts: list[SmsPart],
        idem_key: str,
        refs: list[str],
        on_accepted: OnAccepted | None,
        last_ref: Any,
    ) -> None:
        """Modem thread, right after the last part was accepted: a simulated network sees the
        message, then `on_accepted` records it. Never raises: it WAS sent."""
        if self._record_sent is not None:
            try:
                self._record_sent(parts, idem_key, self._clock())
            except (OSError, gammu.GSMError) as exc:
                log.error("modem %s: could not record sent SMS: %s", self.name, exc)
        if on_accepted is not None:
            reference = f"{self.name}:{','.join([*refs, str(last_ref)])}"
            try:
                on_accepted(self.name, reference)
            except Exception:  # the caller's own commit after send() still runs
                log.exception("modem %s: recording an accepted SMS failed", self.name)

    def _send_failed(self, exc: BaseException, sent: int, total: int) -> SendError:
        reason = f"{gsm_error_text(exc)} after {sent}/{total} parts"
        if type(exc).__name__ in PERMANENT_SEND_ERRORS:
            log.warning("modem %s: send rejected permanently: %s", self.name, reason)
            return PermanentSendError(reason)
        if is_link_error(exc):
            self._link_failed(reason)
        else:
            log.warning("modem %s: send failed: %s", self.name, reason)
            self._c.send_failed(reason)
        return TransientSendError(reason)

    # -- the worker thread ----------------------------------------------------------------------

    def _link_failed(self, reason: str) -> ModemError:
        """Record a modem failure, go down (the watchdog re-inits) and return the error to raise."""
        self._c.fail(reason)
        self._c.set("down", reason)
        return ModemError(f"modem {self.name}: {reason}")

    async def _call(self, fn: Callable[[Any], T], limit_s: float, what: str) -> T:
        """Run ``fn(state_machine)`` on the modem thread with a timeout."""
        try:
            return await self._thread.call(fn, limit_s, what)
        except NotConnected:
            raise self._link_failed(f"{what}: not connected") from None
        except TimeoutError:
            raise self._link_failed(f"{what} timed out after {limit_s:g} s") from None
        except asyncio.CancelledError:
            raise_if_cancelling()
            # Not our cancellation: the call waited behind a stuck one whose thread was
            # abandoned (its queue is cancelled). A link failure, so a send fails over.
            raise self._link_failed(f"{what}: modem thread abandoned") from None

    def _dummy_device(self) -> Path | None:
        return Path(self._settings.device) if self._settings.is_dummy else None

    def _gammu_config(self) -> dict[str, str]:
        s = self._settings
        return {"Model": s.model, "Connection": s.connection, "Device": s.device}

    async def _connect(self) -> None:
        """One Init attempt (serialised). Raises ModemError and leaves the state ``down``."""
        async with self._conn_lock:
            if self._c.state == "up":
                return
            if self._c.closed:
                raise ModemError(f"modem {self.name} is closed")
            if self._c.state == "down":
                self._c.set("reinit")
            try:
                await self._thread.start(
                    self._gammu_config(),
                    is_dummy=self._settings.is_dummy,
                    limit_s=self._init_timeout_s,
                )
            except TimeoutError:
                raise self._link_failed(
                    f"Init timed out after {self._init_timeout_s:g} s"
                ) from None
            except gammu.GSMError as exc:
                raise self._link_failed(gsm_error_text(exc)) from exc
            except OSError as exc:
                raise self._link_failed(f"device {self._settings.device}: {exc}") from exc
            self._c.set("up", f"{self._settings.model or 'auto'} on {self._settings.device}")

    async def _refresh_signal(self) -> None:
        try:
            quality = await self._call(
                calls.signal_quality, self._call_timeout_s, "GetSignalQuality"
            )
        except ModemError:
            return
        except gammu.GSMError as exc:
            if type(exc).__name__ in UNSUPPORTED:
                self._c.signal_percent = None
                return
            if is_link_error(exc):
                self._link_failed(gsm_error_text(exc))
            else:
                log.warning("modem %s: signal query failed: %s", self.name, gsm_error_text(exc))
            return
        percent = quality.get("SignalPercent")
        self._c.signal_percent = int(percent) if isinstance(percent, int) and percent >= 0 else None
