"""Pytest fixtures on a real local Synapse (bot/synapse_local.py): one server per session.

Use from a test module: bind the fixtures, e.g. `synapse = synapse_server.synapse`.
Tests isolate through fresh users and rooms.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nio import AsyncClient, AsyncClientConfig, SyncResponse

from bot.synapse_local import Account, LocalSynapse, SynapseError


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSynapse]:
    """One homeserver per test session; a port race at start is retried on a new port."""
    last: Exception | None = None
    for _ in range(3):
        hs = LocalSynapse(tmp_path_factory.mktemp("synapse"))
        try:
            hs.start()
            break
        except SynapseError as exc:  # e.g. the probed free port was taken meanwhile
            last = exc
            hs.stop()
    else:
        raise RuntimeError(f"synapse did not start: {last}")
    try:
        yield hs
    finally:
        hs.stop()


def register(hs: LocalSynapse, prefix: str = "u") -> Account:
    return hs.register(f"{prefix}{uuid.uuid4().hex[:10]}", "pw-" + uuid.uuid4().hex[:8])


@pytest.fixture
def new_user(synapse: LocalSynapse) -> Callable[[str], Account]:
    """new_user("coord") -> a fresh registered account."""

    def make(prefix: str = "u") -> Account:
        return register(synapse, prefix)

    return make


async def make_client(
    hs: LocalSynapse, acct: Account, store_dir: Path | None = None
) -> AsyncClient:
    """A nio client logged in as `acct`; with `store_dir` it has E2EE and its own store."""
    cfg = AsyncClientConfig(
        encryption_enabled=store_dir is not None,
        store_sync_tokens=True,
        max_timeouts=2,
        max_limit_exceeded=2,
    )
    if store_dir is not None:
        store_dir.mkdir(parents=True, exist_ok=True)
    c = AsyncClient(
        hs.url,
        acct.user_id,
        device_id=acct.device_id,
        store_path=str(store_dir) if store_dir else "",
        config=cfg,
    )
    c.restore_login(acct.user_id, acct.device_id, acct.access_token)
    return c


async def sync_once(c: AsyncClient, timeout_ms: int = 0) -> SyncResponse:
    """One sync plus the key chores sync_forever would do."""
    resp = await asyncio.wait_for(c.sync(timeout=timeout_ms), timeout_ms / 1000 + 20)
    assert isinstance(resp, SyncResponse), resp
    if c.olm is not None:
        if c.should_upload_keys:
            await asyncio.wait_for(c.keys_upload(), 20)
        if c.should_query_keys:
            await asyncio.wait_for(c.keys_query(), 20)
        if c.should_claim_keys:
            await asyncio.wait_for(c.keys_claim(c.get_users_for_key_claiming()), 20)
        await asyncio.wait_for(c.send_to_device_messages(), 20)
    return resp


@pytest_asyncio.fixture
async def user_client(
    synapse: LocalSynapse,
) -> AsyncIterator[Callable[..., Any]]:
    """user_client(acct, store_dir=None) -> logged-in AsyncClient; closed at teardown."""
    clients: list[AsyncClient] = []

    async def make(acct: Account, store_dir: Path | None = None) -> AsyncClient:
        c = await make_client(synapse, acct, store_dir)
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()
