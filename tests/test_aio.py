"""bot/aio.py: the one helper that keeps a cancellation from being swallowed."""

from __future__ import annotations

import asyncio

import pytest

from bot.aio import finish, raise_if_cancelling


async def test_no_pending_cancellation_is_a_no_op() -> None:
    raise_if_cancelling()
    raise_if_cancelling(TimeoutError("slow"))


@pytest.mark.parametrize("with_cause", [True, False])
async def test_pending_cancellation_is_raised_with_its_cause(with_cause: bool) -> None:
    cause = TimeoutError("aiohttp turned the cancellation into this")
    seen: list[asyncio.CancelledError] = []

    async def loop_body() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()  # requested, not yet delivered: what a swallowed cancellation looks like
        try:
            raise_if_cancelling(cause if with_cause else None)
        except asyncio.CancelledError as exc:
            seen.append(exc)
            raise

    task = asyncio.create_task(loop_body())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(seen) == 1
    assert seen[0].__cause__ is (cause if with_cause else None)


async def test_finish_runs_cleanup_to_its_end_through_repeated_cancels() -> None:
    """A second (and third) cancel during shutdown must not cut the cleanup short."""
    steps: list[str] = []
    started = asyncio.Event()

    async def cleanup() -> None:
        steps.append("close db")
        started.set()
        await asyncio.sleep(0.2)
        steps.append("closed")

    async def shutdown() -> None:
        await finish(cleanup())

    task = asyncio.create_task(shutdown())
    await started.wait()
    for _ in range(3):
        task.cancel()
        await asyncio.sleep(0.02)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["close db", "closed"]


async def test_finish_passes_the_cleanup_error_on() -> None:
    async def broken() -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        await finish(broken())
