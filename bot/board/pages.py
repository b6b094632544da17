"""The two pages (the login form, the board) and logging in and out.

The pages are the static files boardui writes (bot/board/static/); until they exist a minimal
built-in page stands in. Login failures all look alike to the browser (one ``?error=`` code),
the log says why."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from aiohttp import web

from bot.board import csrf
from bot.board.auth import HomeserverUnreachable, LoginRefused, check_password, check_token
from bot.board.keys import SESSION, board_of
from bot.board.sessions import COOKIE
from bot.models import Role
from bot.redact import mask_peer
from config.board import BoardSettings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
FIELD_MAX = 4096

_FALLBACK = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Lifeline board</title>
</head><body>{body}</body></html>"""
_LOGIN_FORM = """<h1>Lifeline board</h1><form method="post" action="/login">
<label>Matrix user ID <input name="user" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<p>or</p><label>Access token <input name="token" type="password"></label>
<button type="submit">Log in</button></form>"""
_BOARD = "<h1>Lifeline board</h1><p>The board's page is not installed; the API is at /api/.</p>"


def _page(name: str, fallback: str) -> web.StreamResponse:
    path = STATIC_DIR / name
    if path.is_file():
        return web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8"})
    return web.Response(text=_FALLBACK.format(body=fallback), content_type="text/html")


async def login_page(request: web.Request) -> web.StreamResponse:
    return _page("login.html", _LOGIN_FORM)


async def index_page(request: web.Request) -> web.StreamResponse:
    return _page("index.html", _BOARD)


def client_address(request: web.Request, settings: BoardSettings) -> str:
    """The browser's address: the TCP peer, or behind the configured reverse proxy (and only
    from it) the address that proxy appended last to X-Forwarded-For. Anyone can send that
    header; only the proxy's own last entry is its word."""
    peer = request.remote or "?"
    if not settings.trusted_proxy or peer != settings.trusted_proxy:
        return peer
    forwarded = request.headers.getall("X-Forwarded-For", [])
    last = ",".join(forwarded).rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _fail(code: str) -> web.Response:
    return redirect(f"/login?error={code}")


async def login(request: web.Request) -> web.StreamResponse:
    board = board_of(request)
    form = await request.post()
    user = str(form.get("user") or "").strip()[:FIELD_MAX]
    password = str(form.get("password") or "")[:FIELD_MAX]
    token = str(form.get("token") or "").strip()[:FIELD_MAX]
    address = f"ip:{client_address(request, board.settings)}"
    user_key = f"user:{user.lower()}" if user else ""
    if board.limiter.blocked(address, user_key):
        log.warning(
            "board: login for %s from %s refused: too many failures", mask_peer(user), address
        )
        return _fail("too_many")
    if not (token or (user and password)):
        return _fail("missing")
    homeserver = board.homeserver
    if board.http is None or not homeserver:
        return _fail("unavailable")
    try:
        if token:
            user_id = await check_token(board.http, homeserver, token)
        else:
            user_id = await check_password(board.http, homeserver, user, password)
    except LoginRefused as exc:
        board.limiter.failed(address, user_key)
        log.warning("board: login for %s refused: %s", mask_peer(user or "token"), exc.reason)
        return _fail("denied")
    except HomeserverUnreachable as exc:
        log.error("board: login impossible: %s", exc.reason)
        return _fail("unavailable")
    role = board.role_of(user_id)
    if role is Role.PUBLIC:
        board.limiter.failed(address, user_key, f"user:{user_id.lower()}")
        log.warning("board: %s is not a coordinator or responder; login refused", user_id)
        return _fail("not_staff")
    board.limiter.succeeded(user_key)
    session = board.sessions.create(user_id, role)
    response = redirect("/")
    response.set_cookie(
        COOKIE,
        session.id,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.secure or board.settings.secure,  # https at the proxy counts
        max_age=int(board.sessions.lifetime_s),
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    board = board_of(request)
    session = request[SESSION]
    form = await request.post()
    token = str(form.get(csrf.FIELD) or "") or request.headers.get(csrf.HEADER)
    if not csrf.valid(session, token):
        log.warning("board: logout of %s without a valid CSRF token refused", session.user)
        return web.Response(status=403, text="missing or wrong CSRF token")
    board.sessions.drop(session.id)
    response = redirect("/login")
    response.del_cookie(COOKIE, path="/")
    return response
