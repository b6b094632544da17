"""A modem's state and counters, and the one loud log line per state change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final

from bot import backoff

log = logging.getLogger(__name__)

STATES: Final = ("starting", "up", "down", "reinit")
_ERRORS_BEFORE_REINIT: Final = 5  # consecutive non-link send errors that force a re-init


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


class ModemState:
    """Mutable state of one modem; only the modem's event-loop side touches it."""

    def __init__(
        self,
        name: str,
        clock: Callable[[], float],
        *,
        backoff_initial_s: float,
        backoff_max_s: float,
    ) -> None:
        self.name = name
        self._clock = clock
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self.state = "starting"
        self.closed = False
        self.signal_percent: int | None = None
        self.last_ok_at: float | None = None
        self.last_error: str | None = None
        self.consecutive_errors = 0
        self.received = 0
        self.sent = 0
        self.pending_parts = 0

    def snapshot(self) -> ModemHealth:
        return ModemHealth(**{f.name: getattr(self, f.name) for f in fields(ModemHealth)})

    def reinit_delay(self) -> float:
        """Watchdog: exponential backoff after consecutive errors (1 s … 60 s by default)."""
        return backoff.delay(
            self.consecutive_errors,
            base=self._backoff_initial_s,
            cap=self._backoff_max_s,
            jitter=False,  # one modem per SIM: no herd to spread, and the log states the delay
        )

    def ok(self) -> None:
        self.last_ok_at = self._clock()
        self.consecutive_errors = 0

    def fail(self, reason: str) -> None:
        self.last_error = reason
        self.consecutive_errors += 1

    def send_failed(self, reason: str) -> None:
        """A non-link send error; too many in a row mean the modem is sick: re-init it."""
        self.fail(reason)
        if self.consecutive_errors >= _ERRORS_BEFORE_REINIT:
            self.set("down", f"{self.consecutive_errors} errors in a row")

    def set(self, state: str, reason: str = "") -> None:
        old = self.state
        if state == old:
            return
        self.state = state
        suffix = f": {reason}" if reason else ""
        if state == "down" and self.closed:
            log.info("modem %s: %s -> down%s", self.name, old, suffix)
        elif state == "down":
            retry = f" (re-init in {self.reinit_delay():.1f} s)"
            log.error("modem %s: %s -> DOWN%s%s", self.name, old, suffix, retry)
        elif state == "reinit":
            log.warning(
                "modem %s: %s -> reinit (attempt after %d error%s)",
                self.name,
                old,
                self.consecutive_errors,
                "" if self.consecutive_errors == 1 else "s",
            )
        elif state == "up" and old != "starting":
            log.warning("modem %s: %s -> UP again%s", self.name, old, suffix)
        else:
            log.info("modem %s: %s -> %s%s", self.name, old, state, suffix)
