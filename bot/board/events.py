"""Live updates: an in-process pub/sub and the Server-Sent Events stream (GET /api/events).

The database calls :meth:`Hub.kick` after every commit (no polling). One task then looks up
what changed since the last look (on the database's read connection: it never waits for a
transaction), at once after a quiet spell and at most every ``MIN_GAP_S`` in a burst, and only
while a board is open, and hands each changed case and team to every open stream; each stream
shapes it for its own viewer (numbers masked for responders). A stream that cannot keep up is
closed (the page reconnects and reloads the list) instead of growing memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.board import views
from bot.board.jsonout import dumps
from bot.board.keys import SESSION, board_of
from bot.store import board as store
from bot.store.board import CaseRow
from bot.store.db import Database
from bot.store.teams import team_from_row

log = logging.getLogger(__name__)

# A commit after a quiet spell is looked up at once (it was 0.2 s later, always); in a burst
# the looks come at most this often: each one reads the last SLACK_S of changes (CPU).
MIN_GAP_S = 0.1
SLACK_S = 30.0  # a transaction's clock may be read a while before it commits
PING_S = 15.0
QUEUE_MAX = 1000


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "case" | "team"
    case: CaseRow | None = None
    team: dict[str, Any] | None = None


class Hub:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        self._kick = asyncio.Event()
        self._subscribers: set[asyncio.Queue[Change | None]] = set()
        self._since = clock()
        self._seen: dict[tuple[str, Any], Any] = {}  # what each case/team looked like last
        self._closed = False

    def kick(self) -> None:
        """Something was committed (called by the database, on the event loop)."""
        self._kick.set()

    def subscribe(self) -> asyncio.Queue[Change | None]:
        q: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_MAX + 1)
        if self._closed:
            q.put_nowait(None)
        self._subscribers.add(q)
        log.info("board: live stream opened (%d open)", len(self._subscribers))
        return q

    def unsubscribe(self, q: asyncio.Queue[Change | None]) -> None:
        if q in self._subscribers:
            self._subscribers.discard(q)
            log.info("board: live stream closed (%d open)", len(self._subscribers))

    def close(self) -> None:
        """Shutdown: every open stream ends now (the server does not wait for browsers)."""
        self._closed = True
        for q in list(self._subscribers):
            self._end(q)

    def _end(self, q: asyncio.Queue[Change | None]) -> None:
        while True:
            try:
                q.put_nowait(None)
                return
            except asyncio.QueueFull:
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._kick.wait()
            self._kick.clear()  # commits from now on (during the look too) kick the next look
            if not self._subscribers:
                self._since = self.clock()  # a new board loads the whole list anyway
                self._seen.clear()
                continue
            started = loop.time()
            try:
                await self.publish()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("board: live update failed; the next commit tries again")
            await asyncio.sleep(max(0.0, started + MIN_GAP_S - loop.time()))

    async def publish(self) -> int:
        """Hand every case and team changed since the last look to the open streams."""
        started = self.clock()
        since = self._since - SLACK_S
        # The window reaches SLACK_S back, so in a burst it holds many cases already sent:
        # their light versions are compared first, whole rows are read for the new ones only.
        fresh = []
        for case_id, version in await store.case_versions(self.db, since):
            if self._seen.get(("case", case_id)) != version:
                self._seen[("case", case_id)] = version
                fresh.append(case_id)
        changes: list[Change] = [
            Change("case", case=row) for row in await store.cases_by_id(self.db, fresh)
        ]
        teams = await store.teams_changed(self.db, since)
        if teams:
            working = await store.team_work(self.db)
            for t in teams:
                key = (t["status"], t["updated_at"], working.get(t["id"]))
                if self._seen.get(("team", t["id"])) != key:
                    self._seen[("team", t["id"])] = key
                    changes.append(Change("team", team={**dict(t), "work": working.get(t["id"])}))
        self._since = started
        if len(self._seen) > 20_000:
            self._seen.clear()  # rare: a few duplicate events are harmless, memory growth is not
        for q in list(self._subscribers):
            for change in changes:
                if q.qsize() >= QUEUE_MAX:
                    log.warning("board: a live stream fell behind; closing it (it reconnects)")
                    self.unsubscribe(q)
                    self._end(q)
                    break
                q.put_nowait(change)
        return len(changes)


async def stream(request: web.Request) -> web.StreamResponse:
    """GET /api/events: ``event: case`` / ``event: team`` as they change, ``event: ping`` every
    15 s; ends when the session ends, the viewer is no longer staff, or the gateway stops."""
    board = board_of(request)
    session = request[SESSION]
    overdue_s = board.services.settings.dispatch.overdue_after_min * 60.0
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    q = board.hub.subscribe()
    try:
        await resp.write(b"retry: 3000\n\n")
        while True:
            try:
                change = await asyncio.wait_for(q.get(), PING_S)
            except TimeoutError:
                change = Change("ping")
            if change is None:
                break
            found = board.session_of(request)
            if found is None or found[0].id != session.id:
                break  # logged out, expired or no longer staff: the stream ends with the session
            role = found[1]
            if change.case is not None:
                data: Any = views.case_json(change.case, role, board.clock(), overdue_s)
            elif change.team is not None:
                team = team_from_row(change.team)
                data = views.team_json(team, change.team["work"], board.bases.get(team.id))
            else:
                data = {"at": board.clock()}
            await resp.write(f"event: {change.kind}\ndata: {dumps(data)}\n\n".encode())
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        board.hub.unsubscribe(q)
    return resp
