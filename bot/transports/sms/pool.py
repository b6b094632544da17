"""Several SIMs behind one send(): per-SIM pacing, least-loaded choice, failover.

Pacing (pitfall 8, operators block SIMs that burst): each modem has an
``aiolimiter.AsyncLimiter`` that releases one SMS *part* every ``60 / send_per_minute`` seconds
(a bucket of 1). That keeps every 60-s window at most ``send_per_minute`` parts (+1 at the window
edge) and never bursts, even right after start. A 6-part Bengali reply costs 6 tokens, because the
operator counts parts, not messages.

Choice: among modems that are up (or not yet started), the one whose queue drains soonest; the
modem the victim wrote to (``prefer``) wins when it is healthy and not more than
``PREFER_SLACK_S`` seconds behind the best, so a reply comes from the number the victim knows.

Failover: a ``TransientSendError`` on one modem tries the next one; a permanent one (invalid
number, text that cannot be encoded) is raised at once, never retried on other SIMs. Note: a
message that failed after some of its parts went out is sent whole on the next modem; the handset
then holds an orphan part (unavoidable without delivery reports).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import gammu
from aiolimiter import AsyncLimiter

from bot.aio import raise_if_cancelling
from bot.redact import mask_peer
from bot.transports.sms.codec import count_parts
from bot.transports.sms.errors import PermanentSendError, TransientSendError
from bot.transports.sms.health import ModemHealth
from bot.transports.sms.modem import Modem, OnAccepted

log = logging.getLogger(__name__)

PREFER_SLACK_S: Final = 30.0
_RESTART_DELAY_S: Final = 5.0
_SENDABLE: Final = ("up", "starting")


class ModemPool:
    def __init__(self, modems: list[Modem], per_minute: dict[str, int]) -> None:
        names = [m.name for m in modems]
        if len(names) != len(set(names)):
            raise ValueError(f"modem names must be unique, got {names}")
        missing = [n for n in names if n not in per_minute]
        if missing:
            raise ValueError(f"no send_per_minute for modem(s) {missing}")
        bad = {n: r for n, r in per_minute.items() if n in names and r <= 0}
        if bad:
            raise ValueError(f"send_per_minute must be > 0, got {bad}")
        self._modems = list(modems)
        self._interval = {n: 60.0 / per_minute[n] for n in names}
        self._limiters = {n: AsyncLimiter(1, self._interval[n]) for n in names}
        self._queued = dict.fromkeys(names, 0)  # parts waiting for (or holding) a token

    @property
    def modems(self) -> list[Modem]:
        return list(self._modems)

    def health(self) -> list[ModemHealth]:
        return [m.health for m in self._modems]

    async def wait_for_slot(self, max_wait_s: float = 5.0) -> None:
        """Return once some usable modem could send right now, so the outbox claims its next
        row at the last moment: a reply queued meanwhile is claimed before more advisories."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        while loop.time() < deadline:
            usable = [m.name for m in self._modems if m.health.state in _SENDABLE]
            if not usable or any(
                self._queued[n] == 0 and self._limiters[n].has_capacity() for n in usable
            ):
                return
            await asyncio.sleep(min([0.2, *(self._estimated_wait(n) for n in usable)]) or 0.05)

    def _estimated_wait(self, name: str) -> float:
        busy = 0.0 if self._limiters[name].has_capacity() else self._interval[name]
        return busy + self._queued[name] * self._interval[name]

    def _candidates(self, prefer: str | None) -> list[Modem]:
        usable = [m for m in self._modems if m.health.state in _SENDABLE]
        # "up" before "starting", then the soonest free, then configuration order.
        order = {m.name: i for i, m in enumerate(self._modems)}
        usable.sort(
            key=lambda m: (
                m.health.state != "up",
                self._estimated_wait(m.name),
                order[m.name],
            )
        )
        if prefer is not None:
            preferred = next((m for m in usable if m.name == prefer), None)
            if preferred is not None and usable:
                best = usable[0]
                slack = self._estimated_wait(prefer) - self._estimated_wait(best.name)
                as_healthy = preferred.health.state == "up" or best.health.state != "up"
                if as_healthy and slack <= PREFER_SLACK_S:
                    usable.remove(preferred)
                    usable.insert(0, preferred)
        return usable

    async def send(
        self,
        to: str,
        text: str,
        *,
        idem_key: str,
        prefer: str | None = None,
        on_accepted: OnAccepted | None = None,
    ) -> tuple[str, str]:
        """Send on the best modem; returns (modem name, reference). Raises SendError.
        ``on_accepted`` runs on the modem's thread the moment the message is accepted."""
        try:
            parts = await asyncio.to_thread(count_parts, text)
        except (gammu.GSMError, ValueError, TypeError) as exc:
            raise PermanentSendError(f"cannot encode text: {exc}") from exc
        failures: list[str] = []
        tried: set[str] = set()
        while True:
            candidates = [m for m in self._candidates(prefer) if m.name not in tried]
            if not candidates:
                break
            modem = candidates[0]
            tried.add(modem.name)
            limiter = self._limiters[modem.name]
            self._queued[modem.name] += parts
            try:
                ref = await modem.send(
                    to, text, idem_key=idem_key, pace=limiter.acquire, on_accepted=on_accepted
                )
            except TransientSendError as exc:
                failures.append(f"{modem.name}: {exc.reason}")
                log.warning(
                    "send to %s failed on modem %s (%s); trying another modem",
                    mask_peer(to),
                    modem.name,
                    exc.reason,
                )
                continue
            finally:
                self._queued[modem.name] -= parts
            if failures:
                log.warning(
                    "send to %s succeeded on modem %s after failover", mask_peer(to), modem.name
                )
            return modem.name, ref
        states = ", ".join(f"{m.name}={m.health.state}" for m in self._modems)
        reason = "; ".join(failures) if failures else "no modem is up"
        log.error("send to %s failed on every modem (%s): %s", mask_peer(to), states, reason)
        raise TransientSendError(f"all modems failed ({states}): {reason}")

    async def run(self) -> None:
        """Run every modem's watchdog/poll loop; one failing modem never stops the others."""
        async with asyncio.TaskGroup() as tg:
            for modem in self._modems:
                tg.create_task(self._supervise(modem), name=f"modem-{modem.name}")

    async def _supervise(self, modem: Modem) -> None:
        while True:
            raise_if_cancelling()
            try:
                await modem.run()
            except Exception:
                log.exception(
                    "modem %s: run loop crashed; restarting in %.0f s", modem.name, _RESTART_DELAY_S
                )
                await asyncio.sleep(_RESTART_DELAY_S)
                continue
            log.info("modem %s: run loop ended (modem closed)", modem.name)
            return

    async def close(self) -> None:
        """Close every modem (each close is bounded by its own timeout)."""
        await asyncio.gather(*(m.close() for m in self._modems))
