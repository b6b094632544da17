"""Who may open the board: a Matrix account the configured homeserver vouches for (password
login, or an access token checked with /whoami) AND listed as a coordinator or responder.

A password check logs in once and logs that device out again at once: the board keeps no
homeserver token. Failed attempts are limited per client address and per user ID."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.errors import TransientError, UserError
from bot.redact import mask_peer

log = logging.getLogger(__name__)

LOGIN_PATH = "/_matrix/client/v3/login"
WHOAMI_PATH = "/_matrix/client/v3/account/whoami"
LOGOUT_PATH = "/_matrix/client/v3/logout"
TIMEOUT = aiohttp.ClientTimeout(total=15)


class LoginRefused(UserError):
    """Wrong password/token, unknown user, or not staff (the reason says which, for the log;
    the login page shows one generic message)."""


class HomeserverUnreachable(TransientError):
    """The homeserver did not answer: try again later."""


async def _post_or_get(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    json: dict[str, Any] | None = None,
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with http.request(method, url, json=json, headers=headers, timeout=TIMEOUT) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else {}
            return r.status, body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise HomeserverUnreachable(
            f"homeserver {url.split('/_matrix', maxsplit=1)[0]}: {exc!r}"
        ) from exc


async def check_password(
    http: aiohttp.ClientSession, homeserver: str, user: str, password: str
) -> str:
    """The user ID the homeserver confirms for this password (the device is logged out)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "initial_device_display_name": "Lifeline board (login check)",
    }
    status, answer = await _post_or_get(http, "POST", homeserver + LOGIN_PATH, json=body)
    if status == 429 or status >= 500:
        raise HomeserverUnreachable(f"homeserver answered {status} to the login")
    if status != 200 or "user_id" not in answer:
        raise LoginRefused(f"homeserver refused the password ({status} {answer.get('errcode')})")
    token = str(answer.get("access_token") or "")
    if token:  # the board keeps no homeserver session: this device is gone again at once
        try:
            await _post_or_get(http, "POST", homeserver + LOGOUT_PATH, json={}, token=token)
        except HomeserverUnreachable:
            log.warning("board: could not log out the login-check device of %s", mask_peer(user))
    return str(answer["user_id"])


async def check_token(http: aiohttp.ClientSession, homeserver: str, token: str) -> str:
    """The user ID the access token belongs to (the token is used once, not kept)."""
    status, answer = await _post_or_get(http, "GET", homeserver + WHOAMI_PATH, token=token)
    if status == 429 or status >= 500:
        raise HomeserverUnreachable(f"homeserver answered {status} to whoami")
    if status != 200 or "user_id" not in answer:
        raise LoginRefused(f"homeserver refused the token ({status} {answer.get('errcode')})")
    return str(answer["user_id"])


class FailureLimit:
    """At most ``limit`` failed logins per key (client address, user ID) in ``window_s``."""

    def __init__(
        self, limit: int, window_s: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        cutoff = self.clock() - self.window_s
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.limit for k in keys if k)

    def failed(self, *keys: str) -> None:
        if len(self._failures) > 10_000:  # a spray of addresses cannot grow memory for ever
            self._failures.clear()
        for key in keys:
            if key:
                self._failures.setdefault(key, deque()).append(self.clock())

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
