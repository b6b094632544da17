"""Shared fixtures. Every test runs with outbound connections blocked except loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.matrix_room import coordination  # noqa: F401 - fixture, registered by name
from tests.harness.netguard import NetGuard, block_outbound
from tests.harness.ollama_standin import (  # noqa: F401 - fixtures, registered by name
    OllamaStandIn,
    ollama_standin,
    standin_fixture,
)
from tests.harness.synapse_server import new_user, synapse, user_client  # noqa: F401


@pytest.fixture(autouse=True)
def _offline_guard() -> Iterator[NetGuard]:
    """Offline by construction: any attempt to reach beyond 127.0.0.1 fails the test."""
    with block_outbound() as guard:
        yield guard
