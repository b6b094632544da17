"""The board's web server: an aiohttp app inside the gateway process (no second service).

Started and stopped by the composition root (bot/app.py). Security on every response: a strict
Content-Security-Policy (nothing from outside the origin, no inline script), nosniff, no
referrer, no caching of API answers. Every page but the login form needs a session; every POST
but the login needs the session's CSRF token (bot/board/csrf.py)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.aio import finish
from bot.board import actions, api, csrf, pages
from bot.board.auth import FailureLimit
from bot.board.events import Hub
from bot.board.jsonout import error
from bot.board.keys import BOARD, ROLE, SESSION, BoardRef, board_of
from bot.board.map import MapData
from bot.board.sessions import COOKIE, Session, Sessions
from bot.models import Role
from handlers.context import Services
from handlers.responder import ResponderFlow

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the login
    # form's POST, which the same-origin check must refuse; nothing leaves the origin either way.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Reachable without a session: the login form and what it needs to render.
PUBLIC_PREFIXES = ("/static/", "/vendor/leaflet/", "/vendor/markercluster/")


def leaflet_dir() -> Path:
    from xstatic.pkg import leaflet  # type: ignore[import-untyped]

    return Path(str(leaflet.BASE_DIR))


def markercluster_dir() -> Path:
    from xstatic.pkg import leaflet_markercluster

    return Path(str(leaflet_markercluster.BASE_DIR))


class Board:
    def __init__(
        self,
        services: Services,
        responder: ResponderFlow,
        *,
        role_of: Callable[[str], Role],
        on_enqueued: Callable[[], None],
    ) -> None:
        self.services = services
        self.settings = services.settings.board
        self.db = services.db
        self.clock = services.clock
        self.responder = responder
        self.role_of = role_of
        self.on_enqueued = on_enqueued
        self.sessions = Sessions(self.settings.session_hours * 3600)
        self.limiter = FailureLimit(self.settings.login_failures)
        self.hub = Hub(self.db, self.clock)
        self.map = MapData(self.settings)
        # Where each configured team is based ([[teams]] base_at), for the map's team layer.
        self.bases = {t.id: t.base_at for t in services.settings.teams if t.base_at is not None}
        self.http: aiohttp.ClientSession | None = None
        self.url: str | None = None  # where it listens, once it does
        self.sitrep = api.SitrepCache(
            services.settings.storage.path.parent / "board" / "sitrep.png"
        )

    @property
    def homeserver(self) -> str:
        """The live homeserver URL (drill mode sets it once its local Synapse is up)."""
        return self.services.settings.matrix.homeserver.rstrip("/")

    def session_of(self, request: web.Request) -> tuple[Session, Role] | None:
        """The request's session and the user's role now (a user taken off the staff lists
        loses the board at their next request)."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return None
        role = self.role_of(session.user)
        if role is Role.PUBLIC:
            log.warning("board: %s is no longer staff; session ended", session.user)
            self.sessions.drop(session.id)
            return None
        return session, role

    # ---- the app ----------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
        app[BOARD] = BoardRef(self)
        app.on_response_prepare.append(_security_headers)
        r = app.router
        r.add_get("/login", pages.login_page)
        r.add_post("/login", pages.login)
        r.add_post("/logout", pages.logout)
        r.add_get("/", pages.index_page)
        if STATIC_DIR.is_dir():
            r.add_static("/static/", STATIC_DIR)
        r.add_static("/vendor/leaflet/", leaflet_dir())
        r.add_static("/vendor/markercluster/", markercluster_dir())
        api.add_routes(r)
        actions.add_routes(r)
        return app

    # ---- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; then end the live streams and stop the server."""
        s = self.settings
        await asyncio.to_thread(self.map.load)
        runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=5.0
        )
        await runner.setup()
        self.http = aiohttp.ClientSession()
        try:
            site = web.TCPSite(runner, s.bind, s.port)
            try:
                await site.start()
            except OSError as exc:
                log.error(
                    "board: cannot listen on %s:%d (%s); the gateway runs on without the board",
                    s.bind,
                    s.port,
                    exc.strerror or exc,
                )
                return
            host = f"[{s.bind}]" if ":" in s.bind else s.bind
            self.url = f"http://{host}:{s.port}/"
            if s.public_url:
                log.info("board: browsers use %s/ (a reverse proxy in front)", s.public_url)
            if _loopback(s.bind):
                log.info("board: listening on %s (this machine only)", self.url)
            else:
                log.warning(
                    "board: listening on %s — NOT loopback: anyone who can reach this address "
                    "gets the login page; use it only on the control room's own network",
                    self.url,
                )
            self.db.on_commit.append(self.hub.kick)
            await self.hub.run()
        finally:
            await finish(self._stop(runner))

    async def _stop(self, runner: web.AppRunner) -> None:
        if self.hub.kick in self.db.on_commit:
            self.db.on_commit.remove(self.hub.kick)
        self.hub.close()  # open streams end now, so the runner has nothing to wait for
        try:
            await runner.cleanup()
        finally:
            if self.http is not None:
                await self.http.close()
            self.map.close()
            runner.app[BOARD].board = None  # see bot/board/keys.py
            log.info("board stopped")


@web.middleware
async def guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Sessions and CSRF for every route but the login page and its static files."""
    path = request.path
    if request.method == "POST" and not _same_origin(request):
        log.warning("board: cross-origin POST %s refused", path)
        return error(403, "cross-origin request refused")
    if path == "/login" or path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    found = board_of(request).session_of(request)
    if found is None:
        if path == "/":
            return pages.redirect("/login")
        return error(401, "log in first")
    session, role = found
    request[SESSION], request[ROLE] = session, role
    token = request.headers.get(csrf.HEADER)
    if request.method == "POST" and path != "/logout" and not csrf.valid(session, token):
        log.warning("board: POST %s by %s without a valid CSRF token", path, session.user)
        return error(403, "missing or wrong CSRF token")
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith(("/api/", "/login", "/logout", "/media/")) or request.path == "/":
        response.headers.setdefault("Cache-Control", "no-store")


def _same_origin(request: web.Request) -> bool:
    """A browser names the page a POST came from; another origin's POST is refused (SameSite
    cookies and the CSRF token are the other two locks). Behind a reverse proxy the browser's
    origin is ``[board] public_url``, and only that: X-Forwarded-* headers are never read (any
    client can send them)."""
    origin = request.headers.get("Origin")
    public = board_of(request).settings.public_url
    return origin is None or origin == (public or f"{request.scheme}://{request.host}")


def _loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False
