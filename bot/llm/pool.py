"""The model pool: every configured Ollama server (``[[model.hosts]]``, or ``[model] host`` as
one server with one slot), which of them may take a turn, and the turn itself.

- The model worker (bot/model_worker.py) reserves a slot on the least-loaded server that is up
  and has what the message needs (``vision``/``audio``), then runs the turn inside
  ``pool.turn(host, needs)``: every ``chat`` of that turn goes to that server.
- A chat that fails because of the server (down, timeout, 5xx, model gone) opens that server's
  circuit and is sent again at once to another capable server: the turn goes on there, with
  the tool results it already has (nothing runs twice), and costs the message no attempt.
  Only when no server can take it does the error reach the worker (degraded reply, retry).
- ``watch`` probes each server (every 30 s while up, with backoff while down), loads the model
  before the first turn needs it (a chat without messages, docs/facts.md; state ``warming``
  until then) and again when a server comes back, and refuses a server that lacks the model or
  answers as another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from bot import backoff
from bot.aio import raise_if_cancelling
from bot.llm.client import LLM
from bot.llm.errors import ModelError, ModelRejected
from bot.llm.hosts import DOWN, REFUSED, UP, WARMING, ModelHost, same_model
from bot.llm.types import ChatResult, HostStatus, ModelHealth
from config.settings import ModelSettings

log = logging.getLogger(__name__)

PROBE_EVERY_S = 30.0  # while a server is up
PROBE_RETRY_BASE_S = 2.0  # while it is down: 2, 4, 8 … up to PROBE_EVERY_S
MEDIA_CAPABILITIES = frozenset({"vision", "audio"})
SERVE, WAIT, DEGRADED = "serve", "wait", "degraded"


@dataclass(eq=False)
class Lease:
    """One turn's hold on a server's slot; ``host`` changes when the turn moves."""

    host: ModelHost
    needs: frozenset[str]
    tried: set[str] = field(default_factory=set)
    ok: bool = False  # the last chat of the turn succeeded


_LEASE: ContextVar[Lease | None] = ContextVar("model_lease", default=None)


class ModelPool:
    """The servers and their slots; ``chat`` has the signature of ``LLM.chat``."""

    def __init__(
        self,
        settings: ModelSettings,
        *,
        retry_base_s: float,
        retry_max_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.hosts = [
            ModelHost(
                spec=h,
                client=LLM(settings, h.url),
                retry_base_s=retry_base_s,
                retry_max_s=retry_max_s,
            )
            for h in settings.pool
        ]
        self.on_change: Callable[[], None] = lambda: None  # a slot freed or a server changed
        # A turn failed on the server: its watcher probes it now instead of in 30 s.
        self._poke = {h.name: asyncio.Event() for h in self.hosts}
        self._serving: bool | None = None

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def total_slots(self) -> int:
        return sum(h.slots for h in self.hosts)

    async def __aenter__(self) -> ModelPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for host in self.hosts:
            await host.client.aclose()

    # -- which server -------------------------------------------------------------------

    def mode(self, now: float) -> str:
        """``serve``: a server is up. ``wait``: none is, but one is loading the model (for at
        most a turn's timeout). ``degraded``: none can serve: victims get the fallback."""
        if any(h.state(now) == UP for h in self.hosts):
            return SERVE
        limit = self._settings.timeout_s
        if any(
            h.state(now) == WARMING
            and h.warming_since is not None
            and now - h.warming_since < limit
            for h in self.hosts
        ):
            return WAIT
        return DEGRADED

    def can_serve(self, now: float) -> bool:
        return self.mode(now) == SERVE

    def has_free_slot(self, now: float) -> bool:
        return any(h.free(now) for h in self.hosts)

    def blocked_needs(self, now: float) -> frozenset[str]:
        """Capabilities an up server has but no server with a free slot: messages that need
        them wait for such a slot (a voice note never goes to a server without audio)."""
        up = [h for h in self.hosts if h.state(now) == UP]
        offered = frozenset().union(*(h.capabilities for h in up))
        free = frozenset().union(*(h.capabilities for h in up if h.free(now)))
        return (offered - free) & MEDIA_CAPABILITIES

    def reserve(self, needs: frozenset[str], now: float) -> ModelHost | None:
        """Take a slot on the least-loaded free server that has ``needs`` (any free server
        when no server has them: the turn then goes without the media)."""
        free = [h for h in self.hosts if h.free(now)]
        capable = [h for h in free if needs <= h.capabilities]
        offered = any(needs <= h.capabilities for h in self.hosts if h.state(now) == UP)
        pick = capable or ([] if offered else free)
        if not pick:
            return None
        host = min(pick, key=ModelHost.load)
        host.in_flight += 1
        return host

    def next_try_at(self, needs: frozenset[str], now: float) -> float:
        """When a server that can take a message needing ``needs`` may be up again."""
        hosts = [h for h in self.hosts if needs <= h.capabilities] or self.hosts
        chances = [c for c in (h.next_chance(now) for h in hosts) if c is not None]
        return min(chances) if chances else now + PROBE_EVERY_S

    def reset(self) -> None:
        """Operator/test hook: every open circuit closes now (the servers are back)."""
        now = self._clock()
        for host in self.hosts:
            host.streak, host.down_until = 0, 0.0
            host.announce(now)
        self._changed(now)

    # -- a turn -------------------------------------------------------------------------

    @contextlib.contextmanager
    def turn(self, host: ModelHost, needs: frozenset[str]) -> Iterator[Lease]:
        """The slot ``reserve`` took, for the duration of one message's turn."""
        lease = Lease(host, needs if needs <= host.capabilities else frozenset())
        token = _LEASE.set(lease)
        started = time.monotonic()
        try:
            yield lease
        finally:
            _LEASE.reset(token)
            lease.host.in_flight -= 1
            if lease.ok:
                lease.host.record_turn(time.monotonic() - started)
            self.on_change()

    @property
    def health(self) -> ModelHealth:
        """The server of the running turn; outside a turn the best one (for reports)."""
        lease = _LEASE.get()
        if lease is not None:
            return lease.host.health
        now = self._clock()
        up = [h for h in self.hosts if h.state(now) == UP]
        if up:
            return max(up, key=lambda h: len(h.capabilities)).health
        usable = [h for h in self.hosts if h.health.usable and h.refused is None]
        return (usable or self.hosts)[0].health

    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        num_predict: int | None = None,
    ) -> ChatResult:
        """``LLM.chat`` on the turn's server, moved to another capable one at once when the
        server fails. Outside a turn (tools, tests) a slot is taken just for this call."""
        lease = _LEASE.get()
        if lease is None:
            now = self._clock()
            host = self.reserve(frozenset(), now) or self._fallback_host(now)
            with self.turn(host, frozenset()) as lease:
                return await self._chat(lease, messages, tools, num_predict)
        return await self._chat(lease, messages, tools, num_predict)

    def _fallback_host(self, now: float) -> ModelHost:
        host = min(self.hosts, key=lambda h: (h.state(now) != UP, h.load()))
        host.in_flight += 1
        return host

    async def _chat(
        self,
        lease: Lease,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        num_predict: int | None,
    ) -> ChatResult:
        while True:
            host = lease.host
            lease.tried.add(host.name)
            try:
                result = await host.client.chat(messages, tools, num_predict=num_predict)
            except ModelError as err:
                lease.ok = False
                if not _server_at_fault(err):
                    raise  # this message's failure: the worker counts it
                now = self._clock()
                if isinstance(err, ModelRejected):  # 404: the model is gone from the server
                    host.lacks = err.reason
                    host.announce(now)
                else:
                    host.failed(err.reason, now)
                self._poke[host.name].set()
                other = self._failover(lease, now)
                self._changed(now)
                if other is None:
                    raise
                log.warning(
                    "model turn moved from %s to %s at once: %s", host.name, other.name, err.reason
                )
                host.in_flight -= 1
                other.in_flight += 1
                lease.host = other
                continue
            lease.ok = True
            if host.streak or host.down_until:
                host.succeeded(self._clock())
                self._changed(self._clock())
            return result

    def _failover(self, lease: Lease, now: float) -> ModelHost | None:
        """Another up server with what the turn needs, even past its slots (Ollama queues it;
        a turn already under way goes before new ones)."""
        others = [
            h
            for h in self.hosts
            if h.name not in lease.tried and h.state(now) == UP and lease.needs <= h.capabilities
        ]
        return min(others, key=ModelHost.load) if others else None

    # -- health, warm-up ----------------------------------------------------------------

    async def probe(self) -> ModelHealth:
        """Probe every server now (start-up, doctor); the best server's health."""
        await asyncio.gather(*(self._probe(h) for h in self.hosts))
        self._changed(self._clock())
        return self.health

    async def watch(self, on_back: Callable[[], Awaitable[object]]) -> None:
        """Keep probing and warming every server; ``on_back`` when one has loaded the model (at
        start or back from an outage: the messages deferred meanwhile become due)."""
        async with asyncio.TaskGroup() as tg:
            for host in self.hosts:
                tg.create_task(self._watch(host, on_back), name=f"model-host-{host.name}")

    async def _watch(self, host: ModelHost, on_back: Callable[[], Awaitable[object]]) -> None:
        while True:
            raise_if_cancelling()
            now = self._clock()
            loadable = host.health.usable and host.lacks is None and now >= host.down_until
            if loadable and not host.warm and await self._warm(host):
                await on_back()  # messages deferred while it was down or loading: due now
            now = self._clock()
            wake = host.next_probe_at
            if not host.warm and now < host.down_until:
                wake = min(wake, host.down_until)
            poke = self._poke[host.name]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(poke.wait(), max(0.05, wake - now))
            poke.clear()
            await self._probe(host)
            self._changed(self._clock())

    async def _probe(self, host: ModelHost) -> None:
        health = await host.client.probe()
        now = self._clock()
        host.health = health
        if not health.reachable:
            host.warm, host.warming_since = False, None  # it may have restarted: load again
            host.streak += 1
            host.last_error = health.detail
            delay = backoff.delay(host.streak, base=PROBE_RETRY_BASE_S, cap=PROBE_EVERY_S)
            host.next_probe_at = now + delay
        else:
            host.lacks = None if health.usable else await self._lacks(host, health)
            host.next_probe_at = now + PROBE_EVERY_S
            if host.lacks is None and not host.warm and host.warming_since is None:
                host.warming_since = now  # the watch loads the model next
        host.announce(now)

    async def _lacks(self, host: ModelHost, health: ModelHealth) -> str:
        name = self._settings.name
        if health.model_present:
            return health.detail  # e.g. "model lacks: tools"
        served = await host.client.served_models()
        has = ", ".join(served) or "no models"
        return f"model {name} is not on this server (it has {has}); `ollama pull {name}` there"

    async def _warm(self, host: ModelHost) -> bool:
        """Load the model on ``host``; refuse it when it answers as another model."""
        name = self._settings.name
        host.warming_since = self._clock()
        host.announce(host.warming_since)
        started = time.monotonic()
        try:
            answered = await host.client.warm_up()
        except ModelError as err:
            host.warming_since = None
            if err.transient:
                host.failed(f"warm-up failed: {err.reason}", self._clock())
            else:
                host.mismatch = f"warm-up refused: {err.reason}"
                host.announce(self._clock())
            return False
        host.warming_since = None
        now = self._clock()
        if answered and not same_model(answered, name):
            host.mismatch = (
                f"answers as model {answered}, not {name} (another model behind that name, or "
                f"a proxy): its turns would come from the wrong model"
            )
            host.announce(now)
            return False
        host.mismatch = None
        host.warm = True
        host.streak, host.down_until = 0, 0.0
        log.info("model %s loaded on %s in %.1fs", name, host.name, time.monotonic() - started)
        host.announce(now)
        self._changed(now)
        return True

    def _changed(self, now: float) -> None:
        """Log the pool's own state once per change, and wake the waiting workers."""
        serving = self.can_serve(now)
        if serving != self._serving and self._serving is not None:
            if serving:
                log.warning("MODEL BACK: %s", self._summary(now))
            else:
                log.error(
                    "MODEL DOWN: no model host can serve (%s); victims get acks and library advice",
                    self._summary(now),
                )
        if self._serving is not None or serving:
            self._serving = serving
        self.on_change()

    def _summary(self, now: float) -> str:
        return "; ".join(
            f"{h.name} {h.state(now)}" + (f" ({h.reason(now)})" if h.reason(now) else "")
            for h in self.hosts
        )

    def statuses(self) -> list[HostStatus]:
        now = self._clock()
        return [h.status(now) for h in self.hosts]

    def warming(self) -> bool:
        now = self._clock()
        return not self.can_serve(now) and any(h.state(now) == WARMING for h in self.hosts)


def _server_at_fault(err: ModelError) -> bool:
    """Down, slow, crashed, busy (``outage``), or the model missing there (404)."""
    return err.outage or (isinstance(err, ModelRejected) and err.status == 404)


__all__ = ["DEGRADED", "DOWN", "REFUSED", "SERVE", "UP", "WAIT", "WARMING", "ModelPool"]
