"""The Matrix session's close runs to its end even when the stop cancels it again (the test
harness and a supervisor cancel a slow stop once a second): a close cut short left nio's
aiohttp session, with its connection to the homeserver, unclosed."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from nio import AsyncClient

from bot.transports.matrix.session import Session
from config.settings import MatrixSettings


class SlowClose(AsyncClient):
    """Closing takes a moment, as it does with live connections on a loaded machine."""

    async def close(self) -> None:
        await asyncio.sleep(0.2)
        await super().close()


async def test_a_cancelled_close_still_closes_the_http_session() -> None:
    session = Session(
        MatrixSettings(user_id="@bot:localhost"),
        "http://127.0.0.1:9",
        timeline_limit=10,
        max_backfill_events=10,
    )
    client = SlowClose("http://127.0.0.1:9", "@bot:localhost")
    http = aiohttp.ClientSession()
    client.client_session = http
    session.client = client
    closing = asyncio.create_task(session.close())
    await asyncio.sleep(0.05)  # the close has begun
    closing.cancel()  # the stop's second cancellation
    with contextlib.suppress(asyncio.CancelledError):
        await closing
    assert http.closed
