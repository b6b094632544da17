"""Small asyncio helpers: the one place that decides whether a failure hides a cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


def raise_if_cancelling(cause: BaseException | None = None) -> None:
    """Re-raise our own pending cancellation, if there is one.

    Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that races with the inner
    future finishing, and aiohttp/nio can turn a cancellation into a ``TimeoutError``; a loop
    that only awaits through them would then run forever and hang a clean shutdown. Long-running
    loops call this once per iteration, and ``except Exception`` blocks call it with the caught
    exception (``cause``) so the cancellation is never swallowed and keeps its origin."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        if cause is not None:
            raise asyncio.CancelledError from cause
        raise asyncio.CancelledError


async def finish(cleanup: Awaitable[None]) -> None:
    """Run ``cleanup`` to its end even if we are cancelled again meanwhile, then re-raise the
    cancellation. A shutdown cut short leaves aiosqlite connections open, and their worker
    threads are not daemons: the process would never exit (Ctrl-C twice, a supervisor's
    second SIGTERM)."""
    task = asyncio.ensure_future(cleanup)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()
