"""The board's reads (API table: README, "The incident board"): who am I, cases, one case's
story, teams, the map and its tiles, the sitrep chart, stored media. All SQL is in
bot/store/board.py."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bot.board import views
from bot.board.events import stream
from bot.board.jsonout import error, response
from bot.board.keys import ROLE, SESSION, board_of
from bot.charts import render_sitrep_chart
from bot.models import Priority, Role
from bot.store import board as store
from bot.store import incidents
from bot.store.board import FILTERS, LIST_LIMIT, MAX_LIMIT, CaseQuery
from handlers.broadcasts.sitrep import chart_data
from handlers.dispatch.teams import team_kind
from handlers.responder import COORDINATOR_ONLY

if TYPE_CHECKING:
    from bot.board.server import Board

ACTIONS = ("approve", "reject", "assign", "arrived", "resolve", "say")
log = logging.getLogger(__name__)

SITREP_CACHE_S = 60.0  # the chart takes ~0.2 s to draw: one drawing a minute serves every board
_MEDIA_ID = re.compile(r"^(\d{1,12})-(\d{1,3})$")
MEDIA_TYPES = {"image": "image/jpeg", "audio": "audio/ogg"}


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/api/me", me)
    r.add_get("/api/cases", case_list)
    r.add_get("/api/markers", markers)
    r.add_get("/api/cases/{code}", case_page)
    r.add_get("/api/teams", teams)
    r.add_get("/api/map", map_info)
    r.add_get(r"/tiles/{z:\d{1,2}}/{x:\d{1,8}}/{y:\d{1,8}}", tile)
    r.add_get("/api/sitrep.png", sitrep_png)
    r.add_get("/media/{id}", media)
    r.add_get("/api/events", stream)


async def me(request: web.Request) -> web.Response:
    session, role = request[SESSION], request[ROLE]
    return response(
        {
            "user": session.user,
            "role": role.value,
            "csrf": session.csrf,
            "district": "",
            "actions": [
                a for a in ACTIONS if role is Role.COORDINATOR or a not in COORDINATOR_ONLY
            ],
        }
    )


def case_query(request: web.Request, now: float, overdue_s: float) -> CaseQuery:
    q = request.query
    which = q.get("filter", "open") or "open"
    if which not in FILTERS:
        raise ValueError(f"filter is one of {', '.join(FILTERS)}")
    priority = None
    if q.get("priority"):
        try:
            priority = Priority.from_label(q["priority"])
        except KeyError:
            raise ValueError("priority is one of critical, high, medium, low") from None
    try:
        limit = int(q.get("limit") or LIST_LIMIT)
    except ValueError:
        limit = -1
    if not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit is a whole number from 0 to {MAX_LIMIT}")
    return CaseQuery(
        which=which,
        priority=priority,
        area=q.get("area", "").strip()[:100],
        team=q.get("team", "").strip()[:40],
        q=q.get("q", "").strip()[:40],
        overdue_before=now - overdue_s,
        limit=limit,
    )


async def case_list(request: web.Request) -> web.Response:
    board = board_of(request)
    now = board.clock()
    overdue_s = board.services.settings.dispatch.overdue_after_min * 60.0
    try:
        query = case_query(request, now, overdue_s)
    except ValueError as exc:
        return error(400, str(exc))
    rows = await store.cases(board.db, query) if query.limit else []
    counts = await store.case_counts(board.db, query)
    role: Role = request[ROLE]
    return response(
        {
            "cases": [views.case_json(r, role, now, overdue_s) for r in rows],
            # every match, not only the rows sent: "showing 300 of 5,000"
            "total": sum(counts.values()),
            "by_priority": {p.label: counts.get(p, 0) for p in Priority},
            "limit": query.limit,
        }
    )


async def markers(request: web.Request) -> web.Response:
    """Every open case with a position, for the map's pins whatever the list shows."""
    rows = await store.markers(board_of(request).db)
    return response(
        {
            "markers": [
                {
                    "code": r[0],
                    "priority": Priority(int(r[1])).label,
                    "lat": r[2],
                    "lon": r[3],
                    "location": r[4],
                    "location_exact": True,  # as views.case_json: a position is an exact fix
                }
                for r in rows
            ]
        }
    )


async def case_page(request: web.Request) -> web.Response:
    board = board_of(request)
    row = await store.case_by_code(board.db, request.match_info["code"][:40])
    if row is None:
        return error(404, "no such case")
    role: Role = request[ROLE]
    now = board.clock()
    overdue_s = board.services.settings.dispatch.overdue_after_min * 60.0
    story = await store.story(board.db, row.incident.id)
    i, d = row.incident, row.dispatch
    kind = (await store.dispatch_kind(board.db, d.id) if d is not None else None) or team_kind(
        f"{i.needs} {i.summary}"
    )
    return response(
        {
            "case": views.case_json(row, role, now, overdue_s),
            "timeline": views.timeline(story, row.incident, role),
            "team_kind": kind,
            "team_choice": views.team_choice(await incidents.list_teams(board.db), kind),
        }
    )


async def teams(request: web.Request) -> web.Response:
    board = board_of(request)
    working = await store.team_work(board.db)
    return response(
        {
            "teams": [
                views.team_json(t, working.get(t.id), board.bases.get(t.id))
                for t in await incidents.list_teams(board.db)
                if t.status != "offline"
            ]
        }
    )


async def map_info(request: web.Request) -> web.Response:
    return response(board_of(request).map.info())


async def tile(request: web.Request) -> web.Response:
    m = request.match_info
    return await board_of(request).map.tile_response(int(m["z"]), int(m["x"]), int(m["y"]))


class SitrepCache:
    """The last chart drawn for the board, redrawn at most once a minute."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.drawn_at = 0.0
        self.lock = asyncio.Lock()

    async def png(self, board: Board) -> bytes:
        async with self.lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if time.monotonic() - self.drawn_at > SITREP_CACHE_S or not self.path.exists():
                data = await chart_data(board.services, board.clock())
                await asyncio.to_thread(render_sitrep_chart, data, self.path)
                self.drawn_at = time.monotonic()
            return await asyncio.to_thread(self.path.read_bytes)


async def sitrep_png(request: web.Request) -> web.Response:
    board = board_of(request)
    try:
        png = await board.sitrep.png(board)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("board: sitrep chart could not be drawn")
        return error(503, "the chart could not be drawn; see the gateway log")
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


def _stored_file(root: Path, path: Path) -> Path | None:
    """``path`` if it is a file inside ``root`` (links resolved first), else None."""
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(root.resolve()) and resolved.is_file() else None


async def media(request: web.Request) -> web.StreamResponse:
    """A stored voice note or photo (photos were stripped of EXIF/GPS when they were stored).
    Only files under ``[media] dir`` are ever served."""
    board = board_of(request)
    m = _MEDIA_ID.match(request.match_info["id"])
    if m is None:
        return error(404, "no such media")
    item = await store.attachment(board.db, int(m.group(1)), int(m.group(2)))
    if item is None or not item.get("path"):
        return error(404, "no such media")
    root = board.services.settings.media.dir
    path = await asyncio.to_thread(_stored_file, root, Path(str(item["path"])))
    if path is None:
        log.warning("board: media %s is outside %s or gone; not served", m.group(0), root)
        return error(404, "media not stored (expired or outside the media directory)")
    mime = str(item.get("mimetype") or MEDIA_TYPES.get(str(item.get("kind")), ""))
    if not re.fullmatch(r"(image|audio|video)/[\w.+-]+", mime) or "svg" in mime:
        mime = "application/octet-stream"
    return web.FileResponse(
        path,
        headers={
            "Content-Type": mime,
            "Content-Disposition": "inline",
            "Cache-Control": "private, no-store",
        },
    )
