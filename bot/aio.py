"""Small asyncio helpers."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Python 3.11's ``asyncio.wait_for`` can swallow a cancellation that races with the inner
    future finishing; a loop that only awaits through it would then run forever and hang a
    clean shutdown. Long-running loops call this once per iteration."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
