"""The two channels of a running gateway. SMS: the modem pool and its outbox. Matrix: the transport
started with retries (a homeserver that is down at start-up never stops SMS; drill mode starts a
local one), then its sync loop and its outbox. Each outbox sends through a sender adapter
(bot/senders.py) and tells the coordinators about a victim's reply that can never be delivered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import backoff, roles
from bot.drill.homeserver import DRILL_COORDINATION, drill_matrix_settings, print_drill
from bot.imports import import_off_loop
from bot.models import Channel, Inbound
from bot.queue import OutboxWorker, RetryPolicy, Sender
from bot.runtime import Runtime
from bot.senders import dead_reply_notice, matrix_sender, sms_sender
from bot.store import inbox, kv

if TYPE_CHECKING:
    from bot.transports.matrix import MatrixTransport
    from bot.transports.sms import ModemPool

log = logging.getLogger(__name__)

MATRIX_CURSOR = "matrix.next_batch"
OUTBOX_LEASE_S = 120.0


class Channels:
    def __init__(
        self, rt: Runtime, retry: RetryPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.rt = rt
        self.retry = retry
        self.clock = clock

    # ---- SMS -----------------------------------------------------------------------------------

    async def start_sms(self) -> ModemPool:
        rt = self.rt
        await import_off_loop("bot.transports.sms")
        from bot import sim
        from bot.transports.sms import Modem, ModemPool

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
                record_sent=sim.sent_recorder(Path(m.device)) if m.is_dummy else None,
            )
            for m in rt.services.settings.sms.modems
        ]
        pool = ModemPool(
            modems, {m.name: m.send_per_minute for m in rt.services.settings.sms.modems}
        )
        rt.pool = pool
        return pool

    def sms_outbox(self, pool: ModemPool) -> OutboxWorker:
        s = self.rt.services.settings
        db_path = None if str(self.rt.db.path) == ":memory:" else self.rt.db.path
        return self._outbox(
            Channel.SMS,
            sms_sender(pool, db_path, self.clock),
            concurrency=max(1, len(s.sms.modems)),
            max_attempts=s.sms.max_send_attempts,
            ready=pool.wait_for_slot,
        )

    # ---- Matrix --------------------------------------------------------------------------------

    async def run_matrix(self) -> None:
        """Started with retries, then its sync loop and its outbox sender."""
        rt = self.rt
        await import_off_loop("bot.synapse_local", "bot.transports.matrix")  # nio, aiohttp
        from bot.synapse_local import SynapseError
        from bot.transports.matrix import MatrixSendError, MatrixStartError

        attempt = 0
        while True:
            try:
                transport = await self._start_matrix()
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
        queue = rt.services.settings.queue
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(transport.run(), name="matrix-sync")
                outbox_matrix = self._outbox(
                    Channel.MATRIX,
                    matrix_sender(transport),
                    concurrency=2,
                    max_attempts=queue.max_attempts,
                    ready=transport.wait_caught_up,
                    back=transport.wait_back,
                    late_after_s=queue.late_notice_after_s,
                )
                tg.create_task(outbox_matrix.run(), name="outbox-matrix")
                if rt.region is not None:
                    tg.create_task(rt.region.run(transport), name="region")
        finally:
            # the sync task closes it too, but a stop before that task's first step never runs
            # its body (nor its finally), and an outbox send after that close reopens HTTP
            await transport.close()

    async def _start_matrix(self) -> MatrixTransport:
        from bot.transports.matrix import (
            LATE_KEY_SUFFIX,
            LATE_KEY_WINDOW_S,
            MatrixSendError,
            MatrixTransport,
        )

        rt = self.rt
        s = rt.services.settings
        matrix_settings = s.matrix
        if not matrix_settings.homeserver:
            from bot.drill.homeserver import ensure_drill

            drill = await ensure_drill(matrix_settings.drill_dir)
            rt.drill = drill
            matrix_settings = drill_matrix_settings(matrix_settings, drill)
            rt.services.settings = s.model_copy(update={"matrix": matrix_settings})
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
            role_of=lambda peer: roles.role_of(rt.services.settings.matrix, Channel.MATRIX, peer),
            load_undecrypted=load_undecrypted,
            tap=rt.region.reader if rt.region is not None else None,
        )
        try:  # a stop (or failure) from here until the sync loop runs closes what login opened
            await transport.start()
            if rt.region is not None:  # before the first sync: its invite accepted, events read
                await rt.region.resolve(transport)
            if matrix_settings.coordination_room.startswith("#"):
                with contextlib.suppress(MatrixSendError):  # resolved again at send time
                    await transport.resolve_room(matrix_settings.coordination_room)
        except BaseException:
            await transport.close()
            raise
        rt.matrix = transport
        rt.services.notifier.coordination_room = matrix_settings.coordination_room or None
        if rt.drill is not None:  # alerts queued while the drill homeserver was starting
            transport.remember_alias(DRILL_COORDINATION, rt.drill.room_id)
        if rt.services.notifier.coordination_room is None:
            log.warning(
                "no [matrix].coordination_room: coordinators get NO alerts or sitreps; "
                "set it to the room id or #alias"
            )
        return transport

    # ---- both ----------------------------------------------------------------------------------

    def _outbox(
        self,
        channel: Channel,
        sender: Sender,
        *,
        concurrency: int,
        max_attempts: int,
        ready: Callable[[], Awaitable[None]],
        back: Callable[[], Awaitable[None]] | None = None,
        late_after_s: float | None = None,
    ) -> OutboxWorker:
        rt = self.rt
        return OutboxWorker(
            rt.db,
            channel=channel,
            sender=sender,
            concurrency=concurrency,
            max_attempts=max_attempts,
            retry=self.retry,
            lease_s=OUTBOX_LEASE_S,
            waker=rt.wakers.sms if channel is Channel.SMS else rt.wakers.matrix,
            clock=self.clock,
            ready=ready,
            back=back,
            on_dead=dead_reply_notice(rt.db, rt.services.notifier),
            late_after_s=late_after_s,
        )
