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


# --- exit even if a database connection leaked ----------------------------------------------
# aiosqlite runs each connection on a non-daemon thread: one connection a test leaves unclosed
# would keep pytest alive for ever after its summary (a CI run that never ends). The leak itself
# is reported by filterwarnings=error in the test that caused it; here the run only ends, with
# pytest's own exit status, naming the threads that were still alive.
_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import sys
    import threading

    stuck = [
        t.name
        for t in threading.enumerate()
        if t.is_alive() and not t.daemon and t is not threading.main_thread()
    ]
    if stuck and _exit_status:
        print(f"\nleaked non-daemon threads at exit (not joined): {stuck}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status[-1])
