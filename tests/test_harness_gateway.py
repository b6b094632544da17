"""The in-process gateway harness itself: a gateway that does not come up in time is stopped,
not left running past its test (its homeserver client session and database connections were
then reported, unclosed, in whichever test the garbage collector happened to run)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.harness.gateway import make_settings, running_gateway
from tests.harness.ollama_standin import OllamaStandIn


async def test_a_gateway_not_ready_in_time_is_stopped(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    with pytest.raises(AssertionError, match="condition not met"):
        async with running_gateway(make_settings(tmp_path, ollama_standin.url), ready_s=0):
            pass
    left = [t for t in asyncio.all_tasks() if t.get_name() == "gateway" and not t.done()]
    assert left == []
