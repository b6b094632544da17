"""The test harness itself: a gateway that does not come up in time is stopped, not left
running past its test (its homeserver client session and database connections were then
reported, unclosed, in whichever test the garbage collector happened to run), and the lanes rig
closes every database it was handed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.store.db import Database
from tests.harness.gateway import make_settings, running_gateway
from tests.harness.lanes import rig
from tests.harness.ollama_standin import OllamaStandIn


async def test_a_gateway_not_ready_in_time_is_stopped(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    with pytest.raises(AssertionError, match="condition not met"):
        async with running_gateway(make_settings(tmp_path, ollama_standin.url), ready_s=0):
            pass
    left = [t for t in asyncio.all_tasks() if t.get_name() == "gateway" and not t.done()]
    assert left == []


async def test_the_lanes_rig_closes_the_database_a_restart_put_in(tmp_path: Path) -> None:
    """test_restart_mid_fire_resumes_without_duplicates swaps in a "restarted" database; the
    rig closed only its first one, and the other's two connections were reported unclosed in a
    later test (test_gateway_restart_mid_broadcast_sends_no_duplicates, under load)."""
    async with rig(tmp_path) as r:
        await r.db.close()
        restarted = Database(r.settings.storage.path)
        await restarted.open()
        r.db = restarted
    assert restarted._conn is None
