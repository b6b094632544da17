"""One server of the model pool: its slots and turns in flight, what its probe found, its own
circuit breaker, whether the model is loaded (warm), its recent turn times, and the one log
line per change of state (``MODEL HOST gpu2 DOWN: … / BACK``).

States: ``up`` (takes turns), ``warming`` (loading the model, takes none yet), ``down``
(unreachable, or a turn failed moments ago: the circuit is open until ``down_until``),
``refused`` (reachable but unusable: lacks the model, serves another one, lacks tools)."""

from __future__ import annotations

import logging
import statistics
from collections import deque
from dataclasses import dataclass, field

from bot import backoff
from bot.llm.client import LLM
from bot.llm.types import NOT_PROBED, HostStatus, ModelHealth
from config.settings import ModelHostSettings

log = logging.getLogger(__name__)

UP, WARMING, DOWN, REFUSED = "up", "warming", "down", "refused"
WARMING_RECHECK_S = 5.0


def same_model(a: str, b: str) -> bool:
    """Ollama's names: ``gemma4`` is ``gemma4:latest``; case does not matter."""

    def norm(name: str) -> str:
        name = name.strip().lower()
        return name if ":" in name else f"{name}:latest"

    return norm(a) == norm(b)


@dataclass(eq=False)
class ModelHost:
    spec: ModelHostSettings
    client: LLM
    retry_base_s: float
    retry_max_s: float
    in_flight: int = 0
    health: ModelHealth = NOT_PROBED
    warm: bool = False
    warming_since: float | None = None  # a warm-up is due or out since then
    lacks: str | None = None  # the probe's finding: no such model here, or no tools
    mismatch: str | None = None  # the warm-up's finding: it answers as another model
    down_until: float = 0.0  # circuit breaker: no turns before this after a failed one
    streak: int = 0  # failures in a row: the backoff step of the circuit and the probe
    last_error: str | None = None
    next_probe_at: float = 0.0
    turn_times: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    _announced: str = ""

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def slots(self) -> int:
        return self.spec.slots

    @property
    def capabilities(self) -> frozenset[str]:
        return self.health.capabilities

    @property
    def refused(self) -> str | None:
        return self.lacks or self.mismatch

    def state(self, now: float) -> str:
        if self.refused is not None:
            return REFUSED
        if not self.health.reachable or now < self.down_until:
            return DOWN
        return UP if self.warm else WARMING

    def reason(self, now: float) -> str:
        state = self.state(now)
        if state == REFUSED:
            return self.refused or ""
        if state == WARMING:
            return f"loading {self.client.settings.name}"
        if state == DOWN:
            return self.last_error or self.health.detail
        return ""

    def free(self, now: float) -> bool:
        return self.state(now) == UP and self.in_flight < self.slots

    def load(self) -> tuple[float, int]:
        """Least loaded first: the share of its slots in use, then the most slots free."""
        return (self.in_flight / self.slots, self.in_flight - self.slots)

    def next_chance(self, now: float) -> float | None:
        """When this host may take a turn again (None: not before someone fixes it)."""
        state = self.state(now)
        if state == REFUSED:
            return None
        if now < self.down_until:
            return self.down_until
        if state == DOWN:
            return max(now, self.next_probe_at)
        if state == WARMING:  # loading: look again soon (the end of the load wakes the queue)
            return now + WARMING_RECHECK_S
        return now

    # -- events ------------------------------------------------------------------------

    def failed(self, reason: str, now: float) -> float:
        """A turn (or the warm-up) failed transiently on this host: open its circuit for a
        backoff that grows with the failures in a row. Returns how long."""
        self.streak += 1
        wait = backoff.delay(self.streak, base=self.retry_base_s, cap=self.retry_max_s)
        self.down_until = now + wait
        self.last_error = reason
        self.announce(now)
        return wait

    def succeeded(self, now: float) -> None:
        self.streak = 0
        self.down_until = 0.0
        self.announce(now)

    def record_turn(self, seconds: float) -> None:
        self.turn_times.append(seconds)

    def median_turn_s(self) -> float | None:
        return statistics.median(self.turn_times) if self.turn_times else None

    def announce(self, now: float) -> None:
        """Log a change of state once: DOWN / REFUSED with the reason, WARMING, BACK / UP."""
        state = self.state(now)
        if state == self._announced:
            return
        old, self._announced = self._announced, state
        where = f"{self.name} ({self.client.base_url})"
        if state == DOWN:
            log.error(
                "MODEL HOST %s DOWN: %s; its turns go to the other hosts", where, self.reason(now)
            )
        elif state == REFUSED:
            log.error("MODEL HOST %s REFUSED: %s", where, self.reason(now))
        elif state == WARMING:
            log.info("MODEL HOST %s WARMING: loading %s", where, self.client.settings.name)
        elif old in (DOWN, REFUSED):
            log.warning("MODEL HOST %s BACK: %d slot(s)", where, self.slots)
        else:
            log.info("MODEL HOST %s UP: %d slot(s), model loaded", where, self.slots)

    def status(self, now: float) -> HostStatus:
        return HostStatus(
            name=self.name,
            url=self.client.base_url,
            state=self.state(now),
            reason=self.reason(now),
            slots=self.slots,
            in_flight=self.in_flight,
            median_turn_s=self.median_turn_s(),
            last_error=self.last_error,
            capabilities=self.capabilities,
        )
