"""An HTTP client for the incident board of a test gateway: logs in like the login form does,
reads the API, follows the live stream (SSE) and records every event."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bot.synapse_local import free_port
from tests.harness.gateway import Gateway, running_gateway, wait_for
from tests.harness.matrix_room import Room, matrix_settings
from tests.harness.ollama_standin import OllamaStandIn


def board_settings(tmp_path: Path, standin: OllamaStandIn, room: Room, **board: Any) -> Any:
    """The Matrix test gateway with the board on, on a free loopback port."""
    return matrix_settings(
        tmp_path, standin, room, board={"enabled": True, "port": free_port(), **board}
    )


def base_url(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.settings.board.port}"


async def board_up(gw: Gateway) -> str:
    async def check() -> bool:
        return gw.app.board is not None and gw.app.board.url is not None

    await wait_for(check, 30)
    return base_url(gw)


def http() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies from an IP-address host (127.0.0.1), as a browser does.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login_status(client: aiohttp.ClientSession, base: str, **form: str) -> tuple[int, str]:
    async with client.post(f"{base}/login", data=form, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


@dataclass
class Staff:
    """A logged-in board user."""

    client: aiohttp.ClientSession
    base: str
    csrf: str = ""
    role: str = ""

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.client.get(self.base + path, allow_redirects=False) as r:
            body = await r.text()
            return r.status, json.loads(body) if "json" in r.content_type else body

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, csrf: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf}
        if csrf == "":
            headers = {}
        async with self.client.post(
            self.base + path, json=body or {}, headers=headers, allow_redirects=False
        ) as r:
            text = await r.text()
            return r.status, json.loads(text) if "json" in r.content_type else text


@contextlib.asynccontextmanager
async def logged_in(base: str, user: str, password: str) -> AsyncIterator[Staff]:
    async with http() as client:
        status, location = await login_status(client, base, user=user, password=password)
        assert (status, location) == (303, "/"), (status, location)
        staff = Staff(client, base)
        code, me = await staff.get("/api/me")
        assert code == 200, me
        staff.csrf, staff.role = me["csrf"], me["role"]
        yield staff


@dataclass
class Events:
    """Every SSE event of one open stream, as (event, data)."""

    received: list[tuple[str, Any]] = field(default_factory=list)
    retry: str | None = None

    async def wait(self, kind: str, match: Any = None, timeout: float = 30.0) -> Any:
        async def check() -> Any:
            for event, data in self.received:
                if event == kind and (match is None or match(data)):
                    return data or True
            return None

        return await wait_for(check, timeout, every=0.1)


@contextlib.asynccontextmanager
async def event_stream(staff: Staff) -> AsyncIterator[Events]:
    events = Events()
    opened = asyncio.Event()

    async def follow() -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with staff.client.get(staff.base + "/api/events", timeout=timeout) as r:
            assert r.status == 200 and r.content_type == "text/event-stream"
            opened.set()
            kind, data = "message", ""
            async for raw in r.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("retry:"):
                    events.retry = line[6:].strip()
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "" and data:
                    events.received.append((kind, json.loads(data)))
                    kind, data = "message", ""

    task = asyncio.create_task(follow())

    async def started() -> bool:
        if task.done():
            task.result()  # the stream failed to open: raise why
        return opened.is_set()

    await wait_for(started, 20)
    try:
        yield events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await task


@contextlib.asynccontextmanager
async def board_gateway(
    tmp_path: Path, standin: OllamaStandIn, room: Room, **board: Any
) -> AsyncIterator[tuple[Gateway, str]]:
    """A running Matrix test gateway with the board up: (gateway, the board's base URL)."""
    async with running_gateway(board_settings(tmp_path, standin, room, **board)) as gw:
        yield gw, await board_up(gw)
