"""Shared fixtures. Every test runs with outbound connections blocked except loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.netguard import NetGuard, block_outbound
from tests.ollama_standin import OllamaStandIn, ollama_standin  # noqa: F401
from tests.synapse_server import new_user, synapse, user_client  # noqa: F401


@pytest.fixture(autouse=True)
def _offline_guard() -> Iterator[NetGuard]:
    """Offline by construction: any attempt to reach beyond 127.0.0.1 fails the test."""
    with block_outbound() as guard:
        yield guard
