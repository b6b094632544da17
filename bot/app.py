"""Composition root: build every service from Settings, run them in one TaskGroup, stop cleanly.

Only the wiring is here. Role policy: bot/roles.py; the status report: bot/status.py; the start
banner and CLI hints: bot/banner.py; the channels (SMS pool, Matrix with retries) and their
outboxes: bot/channels.py, sending through bot/senders.py; who wakes whom: bot/wakers.py;
background upkeep: bot/upkeep.py; drill mode's local homeserver: bot/drill/homeserver.py."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot import roles
from bot.aio import finish
from bot.banner import print_banner, protocol_index_plan
from bot.channels import Channels
from bot.conversation import Conversation
from bot.drill.homeserver import DRILL_COORDINATION
from bot.imports import import_off_loop
from bot.instance_lock import AlreadyRunning, own_devices, single_instance
from bot.intake import Intake
from bot.llm.pool import ModelPool
from bot.model_worker import ModelWorker
from bot.models import Channel, Role, Team
from bot.queue import InboxWorker, RetryPolicy
from bot.region.publish import RegionPublisher
from bot.retention import run_retention
from bot.runtime import Runtime
from bot.status import StatusFacts, status_report
from bot.store import inbox, incidents, model_turns, outbox, region_log
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.tools import ToolRegistry
from bot.upkeep import open_protocols
from bot.wakers import Wakers
from config.settings import Settings
from handlers.broadcasts import Broadcasts
from handlers.context import Notifier, Services, TurnContext
from handlers.dispatch import RESPONDER_TOOLS, VICTIM_TOOLS
from handlers.public import PublicCommands
from handlers.responder import ResponderFlow
from handlers.router import routes
from handlers.victim import VictimFlow

if TYPE_CHECKING:
    from bot.board import Board
    from bot.region.service import Region

log = logging.getLogger(__name__)

EXIT_ALREADY_RUNNING = 4  # distinct from a crash (1) and a config error (2): supervisors stop


class App:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.board: Board | None = None  # the incident board, when [board] enabled
        self.runtime: Runtime | None = None
        self._model_worker: ModelWorker

    def role_of(self, channel: Channel, peer: str) -> Role:
        # The live settings: drill mode adds its coordinator once its homeserver is up.
        live = self.runtime.services.settings if self.runtime is not None else self.settings
        return roles.role_of(live.matrix, channel, peer)

    # ---- run -----------------------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        # Before crash recovery touches any row, and before any modem or homeserver is opened.
        with single_instance(s.storage.path), own_devices(s):
            db = Database(s.storage.path)
            await db.open()
            llm = ModelPool(
                s.model,
                retry_base_s=s.queue.retry_base_s,
                retry_max_s=s.queue.retry_max_s,
                clock=self.clock,
            )
            services = Services(db=db, settings=s, clock=self.clock, notifier=Notifier())
            try:
                await self._run(db, llm, services)
            finally:
                await finish(self._close(llm, db))

    async def _close(self, llm: ModelPool, db: Database) -> None:
        # Each step runs even if the one before failed: an open database keeps the process alive.
        try:
            await llm.aclose()
        finally:
            try:
                await db.close()
            finally:
                if self.runtime is not None and self.runtime.drill is not None:
                    # The drill homeserver lives and dies with the gateway: no orphan processes.
                    await asyncio.to_thread(self.runtime.drill.server.stop)
        log.info("lifeline stopped")

    async def _run(self, db: Database, llm: ModelPool, services: Services) -> None:
        s = self.settings
        now = self.clock()
        recovered_in = await inbox.recover_after_crash(db, now)
        recovered_out = await outbox.recover_after_crash(db, now)
        if recovered_in or recovered_out:
            log.warning(
                "recovered after an unclean stop: %d message(s) re-queued, %d send(s) retried",
                recovered_in,
                recovered_out,
            )
        # Before any case or team changes: the case-code prefix and the publish marks.
        await region_log.configure(db, district=s.region.district, room=s.region.room, now=now)
        await incidents.sync_teams(
            db, [Team(t.id, t.kind, t.base, t.capacity) for t in s.teams], now
        )

        registry: ToolRegistry[TurnContext] = ToolRegistry()
        for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
            registry.register(tool)
        conversation = Conversation(llm, registry, max_rounds=s.model.max_tool_rounds)
        victim = VictimFlow(services, llm, conversation, None)
        public = PublicCommands(services)

        wakers = Wakers()
        broadcasts = Broadcasts(services, status=self._status, on_enqueued=wakers.outboxes)
        region: Region | None = None
        if s.region.district and s.region.room:
            # The region's reader uses nio: imported off the event loop, like the transport.
            await import_off_loop("bot.region.service")
            from bot.region.service import build_region

            region = build_region(services, self.role_of, wakers.outboxes)
        responder = ResponderFlow(
            services,
            conversation,
            self._status,
            broadcasts,
            region.commands if region is not None else None,
        )
        table, dispatcher = routes(s.matrix.user_id, public, responder, victim)

        committed = wakers.committed  # intake wakes the senders and the workers it gave work

        intake = Intake(
            db,
            role_of=self.role_of,
            route=table.decide,
            hook=victim.on_intake,
            per_sender_per_hour=s.queue.per_sender_per_hour,
            clock=self.clock,
            on_committed=committed,
            urgent_first=s.queue.order == "priority",
        )
        rt = Runtime(db=db, llm=llm, services=services, intake=intake, wakers=wakers, region=region)
        self.runtime = rt

        health = await llm.probe()
        index_plan = await asyncio.to_thread(protocol_index_plan, s)
        print_banner(self.settings, health, protocols=index_plan, hosts=llm.statuses())

        retry = RetryPolicy(s.queue.max_attempts, s.queue.retry_base_s, s.queue.retry_max_s)

        async def no_degraded(row: InboxRow, exc: BaseException) -> list[Any]:
            return []

        # The two workers share the queue, the retry policy, the dispatcher and the dead letter;
        # the model route runs one turn per slot of the model pool (bot/model_worker.py).
        inbox_worker = functools.partial(
            InboxWorker,
            db,
            retry=retry,
            handler=dispatcher,
            dead=victim.dead,
            clock=self.clock,
            on_done=wakers.outboxes,
        )
        model_worker = ModelWorker(
            *inbox_worker.args,
            **inbox_worker.keywords,
            pool=llm,
            name="model",
            needs_model=True,
            fifo=s.queue.order == "fifo",
            lease_s=s.queue.lease_s,
            degraded=victim.degraded,
            waker=wakers.model,
            max_bad_turns=s.model.max_failed_turns,
        )
        fast_worker = inbox_worker(
            name="fast",
            needs_model=False,
            fifo=False,
            lease_s=60.0,
            degraded=no_degraded,
            waker=wakers.fast,
        )

        self._model_worker = model_worker
        channels = Channels(rt, retry, self.clock)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(open_protocols(rt, s, victim), name="protocols")
            tg.create_task(llm.watch(on_back=model_worker.reset_circuit), name="model-hosts")
            tg.create_task(
                run_retention(s.media.dir, s.media.retention_days), name="media-retention"
            )
            if s.sms.enabled:
                pool = await channels.start_sms()
                tg.create_task(pool.run(), name="modems")
                tg.create_task(channels.sms_outbox(pool).run(), name="outbox-sms")
            if s.matrix.enabled:
                # Alerts are queued for the coordination room from the first message on, even
                # while the homeserver is unreachable; they go out when it is back.
                services.notifier.coordination_room = s.matrix.coordination_room or (
                    None if s.matrix.homeserver else DRILL_COORDINATION
                )
                tg.create_task(channels.run_matrix(), name="matrix")
            tg.create_task(broadcasts.run(), name="broadcasts")
            tg.create_task(RegionPublisher(rt, self.clock).run(), name="region-publish")
            tg.create_task(model_worker.run(), name="worker-model")
            tg.create_task(fast_worker.run(), name="worker-fast")
            if s.board.enabled:
                from bot.board import Board  # aiohttp server: imported only when it is on

                board = Board(
                    services,
                    responder,
                    role_of=functools.partial(self.role_of, Channel.MATRIX),
                    on_enqueued=wakers.outboxes,
                )
                self.board = board
                tg.create_task(board.run(), name="board")
            rt.ready.set()
            log.info("lifeline is running")

    async def reset_model_circuit(self) -> int:
        """Operator/test hook: treat the model as back now (the probe does this on its own)."""
        return await self._model_worker.reset_circuit()

    # ---- status ---------------------------------------------------------------------------------

    async def status_text(self, rt: Runtime) -> str:
        now = self.clock()
        ins = await inbox.status_counts(rt.db)
        outs = await outbox.status_counts(rt.db)
        oldest = await inbox.oldest_waiting_at(rt.db)
        median = await model_turns.median_ok_seconds(rt.db)
        h = rt.llm.health
        return status_report(
            StatusFacts(
                now=now,
                inbox=ins,
                outbox=outs,
                oldest_waiting_at=oldest,
                model_name=self.settings.model.name,
                model=h,
                median_turn_s=median,
                model_hosts=rt.llm.statuses(),
                model_warming=rt.llm.warming(),
                modems=rt.pool.health() if rt.pool is not None else None,
                matrix=rt.matrix.health if rt.matrix is not None else None,
                matrix_error=rt.matrix_error,
                protocols_ready=rt.protocols is not None,
            )
        )

    async def _status(self) -> str:
        assert self.runtime is not None  # built before any handler or broadcast runs
        return await self.status_text(self.runtime)


async def run_until_stopped(settings: Settings) -> None:
    """Run the app until SIGINT/SIGTERM, then cancel everything and close cleanly."""
    import signal

    app = App(settings)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await app.run()
        except AlreadyRunning as exc:
            log.error("%s", exc)
            print(f"lifeline: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_ALREADY_RUNNING) from None
