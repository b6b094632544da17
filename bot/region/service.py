"""The reading side of the region, wired: the reader the Matrix transport taps the regional room
with, the commands the responder runs, and the start-up chores (join the regional room, rebuild
an empty view from the room's history). Nothing here blocks the gateway: while the regional room
cannot be joined, the district works on its own and retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import aiosqlite
from nio import AsyncClient, JoinError

from bot import backoff
from bot.errors import LifelineError
from bot.models import Channel, Role
from bot.region.commands import RegionCommands
from bot.region.mutual_aid import MutualAid, Recorder
from bot.region.reader import REQUEST_TIMEOUT_S, RegionReader, RegionUnreachable
from bot.store import outbox
from bot.store import region_view as view
from config.settings import RegionSettings
from handlers.context import Services

if TYPE_CHECKING:
    from bot.transports.matrix import MatrixTransport

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Region:
    reader: RegionReader
    commands: RegionCommands

    async def resolve(self, transport: MatrixTransport) -> None:
        """The regional room's id, when configured as an #alias (retried by ``run``)."""
        from bot.transports.matrix import MatrixSendError

        try:
            self.reader.room_id = await transport.resolve_room(self.reader.settings.room)
        except MatrixSendError as exc:
            log.warning("region: cannot resolve %s yet: %s", self.reader.settings.room, exc)

    async def run(self, transport: MatrixTransport) -> None:
        """Join the regional room (retrying), then, once the first sync is in, rebuild the view
        from the room's history if it is empty (a new gateway, or a deleted view)."""
        room = self.reader.settings.room
        attempt = 0
        while True:
            try:  # the publisher joins too (bot/region/publish.py); a second join is a no-op
                self.reader.room_id = await transport.join_room(room)
                break
            except LifelineError as exc:
                attempt += 1
                wait_s = backoff.delay(attempt, base=5.0, cap=300.0)
                log.warning("region: cannot join %s (%s); retrying in %d s", room, exc, wait_s)
                await asyncio.sleep(wait_s)
        self.reader.me = transport.user_id or self.reader.me
        log.info("region: in the regional room %s (%s)", room, self.reader.room_id)
        await transport.wait_caught_up()
        if not await view.is_empty(self.reader.db):
            return
        try:
            await self.reader.rebuild(transport._require_client())
        except (RegionUnreachable, OSError, TimeoutError, aiohttp.ClientError) as exc:
            # the view fills from new events meanwhile; the history can be read again later
            log.error("region: REBUILD FAILED (%s); run `lifeline region rebuild`", exc)
        except Exception:
            log.exception("region: REBUILD FAILED; run `lifeline region rebuild`")


async def join(client: AsyncClient, room: str) -> str:
    """Join (or confirm membership of) the regional room with a bare client (the CLI); its id."""
    resp = await asyncio.wait_for(client.join(room), REQUEST_TIMEOUT_S)
    if isinstance(resp, JoinError):
        raise RegionUnreachable(f"join {room}: {resp.message}")
    return str(resp.room_id)


def build_region(
    services: Services,
    role_of: Callable[[Channel, str], Role],
    on_notice: Callable[[], None],
) -> Region | None:
    """None when no regional room is configured."""
    s = services.settings
    if not (s.region.district and s.region.room):
        return None

    async def notify(conn: aiosqlite.Connection, text: str, key: str, now: float) -> None:
        out = services.notifier.to_coordinators(text, key)
        if out is not None:
            await outbox.enqueue(conn, out, now=now)

    aid = MutualAid(s.region.district, region_recorder(s.region), notify)
    reader = RegionReader(
        s.region,
        services.db,
        services.clock,
        aid,
        me=s.matrix.user_id,
        role_of=lambda peer: role_of(Channel.MATRIX, peer),
        on_applied=on_notice,
    )
    return Region(reader, RegionCommands(s.region, services.db, services.clock, aid))


def region_recorder(region: RegionSettings) -> Recorder:
    """Lend, return and need go through the publish log (bot/region/publish.py ``record``) in
    the caller's transaction: published from there, in order, once."""

    async def record(
        conn: aiosqlite.Connection, kind: str, data: dict[str, Any], now: float
    ) -> int:
        from bot.region import publish

        event = await publish.record(conn, region, kind, data, now)
        if event is None:
            raise RegionUnreachable("this gateway does not publish ([region] room)")
        return event.seq

    return record
