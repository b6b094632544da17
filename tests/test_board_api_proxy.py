"""The board behind a TLS-terminating reverse proxy (nginx, caddy): `[board] public_url` is the
only origin actions are accepted from, and it makes the session cookie Secure. Forwarded headers
from a client are never believed.

Requests are sent as nginx forwards them after TLS (`Host: board.lan`, `X-Forwarded-Proto:
https`, the browser's `Origin: https://board.lan`) to the real board of a real gateway with a
real Synapse; cookies are carried by hand, since an https-only cookie is never sent over the
test's plain http by a cookie jar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from bot.board.sessions import COOKIE
from tests.harness.board_client import board_gateway
from tests.harness.matrix_room import Room
from tests.harness.ollama_standin import OllamaStandIn
from tests.test_board_api import roof_case

PUBLIC = "https://board.lan"
# What nginx adds in front of the board (README, "Behind a reverse proxy").
PROXIED = {"Host": "board.lan", "X-Forwarded-Proto": "https", "X-Forwarded-For": "192.168.1.23"}


class Browser:
    """One browser's requests as the board receives them: its Origin, its cookie."""

    def __init__(self, client: aiohttp.ClientSession, base: str, origin: str, **headers: str):
        self.client, self.base = client, base
        self.headers = {**headers, "Origin": origin}
        self.cookie: dict[str, Any] = {}
        self.csrf = ""

    def _headers(self, **extra: str) -> dict[str, str]:
        cookie = {"Cookie": f"{COOKIE}={self.cookie['value']}"} if self.cookie else {}
        return {**self.headers, **cookie, **extra}

    async def login(self, user: str, password: str) -> tuple[int, str]:
        form = {"user": user, "password": password}
        async with self.client.post(
            f"{self.base}/login", data=form, headers=self._headers(), allow_redirects=False
        ) as r:
            if COOKIE in r.cookies:
                morsel = r.cookies[COOKIE]
                self.cookie = {"value": morsel.value, **{k: morsel[k] for k in morsel}}
            return r.status, r.headers.get("Location", "")

    async def me(self) -> int:
        async with self.client.get(f"{self.base}/api/me", headers=self._headers()) as r:
            if r.status == 200:
                self.csrf = (await r.json())["csrf"]
            return r.status

    async def act(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = self._headers(**{"X-CSRF-Token": self.csrf})
        async with self.client.post(self.base + path, json=body, headers=headers) as r:
            return r.status, await r.json()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def test_behind_a_tls_proxy_actions_from_the_public_origin_work_and_the_cookie_is_secure(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room, coordinator = coordination, coordination.coordinator
    async with (
        board_gateway(tmp_path, ollama_standin, room, public_url=PUBLIC + "/") as (gw, base),
        client() as http,
    ):
        assert gw.settings.board.public_url == PUBLIC  # kept as the browser's Origin names it
        case = await roof_case(gw, ollama_standin)
        browser = Browser(http, base, PUBLIC, **PROXIED)
        assert await browser.login(coordinator.user_id, coordinator.password) == (303, "/")
        assert browser.cookie["secure"] is True  # https at the proxy: an https-only cookie
        assert browser.cookie["httponly"] is True and browser.cookie["samesite"] == "Strict"
        assert await browser.me() == 200

        # the same session and token from any other origin is refused: the plain-http twin of
        # the public address, another site, and the board's own direct address
        for forged in ("http://board.lan", "https://evil.example", base):
            other = Browser(http, base, forged, **PROXIED)
            other.cookie, other.csrf = browser.cookie, browser.csrf
            status, answer = await other.act(f"/api/cases/{case}/approve", {"team": "boat-2"})
            assert (status, answer) == (403, {"error": "cross-origin request refused"}), forged
        assert (await gw.rows("SELECT status FROM dispatches"))[0][0] == "pending_approval"

        status, answer = await browser.act(f"/api/cases/{case}/approve", {"team": "boat-2"})
        assert status == 200 and answer["ok"], answer
        d = await gw.rows("SELECT status, team_id FROM dispatches")
        assert tuple(d[0]) == ("assigned", "boat-2")


async def test_forwarded_headers_change_nothing_without_public_url(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """Anyone can send X-Forwarded-*: without the setting the board ignores them."""
    coordinator = coordination.coordinator
    spoofed = {**PROXIED, "X-Forwarded-Host": "board.lan"}  # Host: below, the board's own
    async with (
        board_gateway(tmp_path, ollama_standin, coordination, login_failures=2) as (_, base),
        client() as http,
    ):
        spoofed["Host"] = base.removeprefix("http://")
        posing = Browser(http, base, PUBLIC, **spoofed)
        assert await posing.login(coordinator.user_id, coordinator.password) == (403, "")
        assert not posing.cookie

        direct = Browser(http, base, base, **spoofed)
        assert await direct.login(coordinator.user_id, coordinator.password) == (303, "/")
        assert direct.cookie["secure"] == ""  # plain http: no Secure flag, whatever was claimed
        assert await direct.me() == 200

        # a guesser cannot dodge the per-address limit by claiming other addresses
        for n, claimed in enumerate(("192.168.1.23", "192.168.1.24"), 1):
            guesser = Browser(http, base, base, **{**spoofed, "X-Forwarded-For": claimed})
            assert await guesser.login(f"@guess{n}:localhost", "guess") == (
                303,
                "/login?error=denied",
            )
        other = Browser(http, base, base, **{**spoofed, "X-Forwarded-For": "192.168.1.25"})
        assert await other.login(coordinator.user_id, coordinator.password) == (
            303,
            "/login?error=too_many",
        )


async def test_behind_the_trusted_proxy_failed_logins_count_per_browser(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """With trusted_proxy, the address the proxy appended last to X-Forwarded-For is the
    browser's: one guesser does not lock everyone else out of the proxied board."""
    coordinator = coordination.coordinator
    board = {"public_url": PUBLIC, "trusted_proxy": "127.0.0.1", "login_failures": 2}
    async with (
        board_gateway(tmp_path, ollama_standin, coordination, **board) as (_, base),
        client() as http,
    ):
        # what the browser claimed comes first; nginx appends the address it saw
        guessing = {**PROXIED, "X-Forwarded-For": "192.168.1.24, 192.168.1.23"}
        for n in (1, 2, 3):
            guesser = Browser(http, base, PUBLIC, **guessing)
            want = "/login?error=denied" if n < 3 else "/login?error=too_many"
            assert await guesser.login(f"@guess{n}:localhost", "guess") == (303, want)

        colleague = Browser(http, base, PUBLIC, **{**PROXIED, "X-Forwarded-For": "192.168.1.24"})
        assert await colleague.login(coordinator.user_id, coordinator.password) == (303, "/")
