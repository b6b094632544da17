"""The broadcast rig: a real SQLite database, Broadcasts, two libGammu dummy modems behind a
ModemPool and the gateway's own SMS OutboxWorker, without the rest of the gateway. Used by
tests/test_modem_lanes.py, tests/test_broadcasts.py and bench/bench_broadcast.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.models import Channel
from bot.queue import OutboxWorker, RetryPolicy, Waker
from bot.senders import sms_sender
from bot.sim import read_outbox, sent_recorder
from bot.store import subscriptions
from bot.store.db import Database
from bot.transports.sms import Modem, ModemPool
from config.settings import Settings
from handlers.broadcasts import Broadcasts
from handlers.context import Notifier, Services
from tests.harness.gateway import make_settings, wait_for

COORD = "@coord:localhost"
ROOM = "!ops:localhost"


def peer(i: int) -> str:
    return f"+88017{i:08d}"


async def _noop_receive(_batch: list[Any]) -> None:
    return None


@dataclass
class Rig:
    """Database + Broadcasts + two dummy modems behind a ModemPool + an SMS OutboxWorker."""

    tmp: Path
    settings: Settings
    db: Database
    services: Services
    broadcasts: Broadcasts
    per_minute: int
    modems: list[Modem] = field(default_factory=list)
    pool: ModemPool | None = None
    waker: Waker = field(default_factory=Waker)
    task: asyncio.Task[None] | None = None
    pool_task: asyncio.Task[None] | None = None

    @property
    def devices(self) -> dict[str, Path]:
        return {m.name: Path(m.device) for m in self.settings.sms.modems}

    def sent(self) -> list[dict[str, Any]]:
        return read_outbox(self.devices)

    async def subscribe(self, n: int, area: str = "ward-5", first: int = 0) -> list[str]:
        peers = [peer(i) for i in range(first, first + n)]
        async with self.db.transaction() as conn:
            for p in peers:
                await subscriptions.join(conn, Channel.SMS, p, area, "en", time.time())
        return peers

    def start_sending(self) -> None:
        self.modems = [
            Modem(
                m, _noop_receive, backoff_initial_s=0.2, record_sent=sent_recorder(Path(m.device))
            )
            for m in self.settings.sms.modems
        ]
        self.pool = ModemPool(self.modems, {m.name: self.per_minute for m in self.modems})
        worker = OutboxWorker(
            self.db,
            channel=Channel.SMS,
            sender=sms_sender(self.pool),
            concurrency=len(self.modems),
            max_attempts=6,
            retry=RetryPolicy(6, 0.2, 1.0),
            lease_s=60.0,
            waker=self.waker,
            clock=time.time,
        )
        # The pool's own loops (poll + watchdog) bring every modem up, as in the gateway.
        self.pool_task = asyncio.create_task(self.pool.run())
        self.task = asyncio.create_task(worker.run())

    async def stop_sending(self) -> None:
        for task in (self.task, self.pool_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.task = self.pool_task = None
        if self.pool is not None:
            await self.pool.close()

    async def count(self, sql: str, *params: Any) -> int:
        row = await self.db.fetchone(sql, params)
        assert row is not None
        return int(row[0])

    async def drained(self, timeout: float = 60.0) -> None:
        async def check() -> bool:
            n = await self.count(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('queued','sending') AND channel='sms'"
            )
            return n == 0

        await wait_for(check, timeout, every=0.1)


@contextlib.asynccontextmanager
async def rig(tmp: Path, *, per_minute: int = 3000, chunk_size: int = 500) -> AsyncIterator[Rig]:
    settings = make_settings(
        tmp,
        "http://127.0.0.1:9",
        sms={
            "modems": [
                {"name": "sim1", "device": str(tmp / "modem-sim1"), "poll_interval_s": 1},
                {"name": "sim2", "device": str(tmp / "modem-sim2"), "poll_interval_s": 1},
            ]
        },
        broadcasts={"sitrep_every_min": 0},
    )
    db = Database(settings.storage.path)
    await db.open()
    services = Services(db=db, settings=settings, clock=time.time, notifier=Notifier(ROOM))
    r = Rig(
        tmp,
        settings,
        db,
        services,
        Broadcasts(services, chunk_size=chunk_size),
        per_minute,
    )
    r.broadcasts._on_enqueued = r.waker.wake
    try:
        yield r
    finally:
        await r.stop_sending()
        r.broadcasts.scheduler.shutdown()
        await db.close()
        await r.db.close()  # a test that "restarts" puts a database of its own here
