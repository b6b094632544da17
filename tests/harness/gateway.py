"""An in-process Lifeline gateway for tests: real SQLite, real libGammu dummy modem(s), the
real ollama client against the stand-in, keyword-only protocol search (dense has its own tests)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import App, Runtime
from bot.sim import inject_sms, read_outbox
from bot.store.db import Database
from config.settings import Settings
from tests.harness.ollama_standin import OllamaStandIn

TEAMS = [
    {"id": "boat-1", "kind": "boat", "base": "ghat", "capacity": 8},
    {"id": "boat-2", "kind": "boat", "base": "office", "capacity": 6},
    {"id": "med-1", "kind": "medical", "base": "clinic", "capacity": 4},
]


def modems(tmp: Path, count: int = 1, per_minute: int = 120) -> list[dict[str, Any]]:
    return [
        {
            "name": f"sim{i}",
            "device": str(tmp / f"modem-sim{i}"),
            "poll_interval_s": 0.1,
            "send_per_minute": per_minute,
        }
        for i in range(1, count + 1)
    ]


def base_config(tmp: Path, model_url: str) -> dict[str, Any]:
    """The test gateway's config: everything under ``tmp``, one dummy modem, no Matrix, no
    embedder, short retries (shared by the in-process and the subprocess gateway)."""
    return {
        "storage": {"path": str(tmp / "lifeline.db")},
        "model": {"host": model_url, "timeout_s": 5, "connect_timeout_s": 2},
        "sms": {"modems": modems(tmp)},
        "matrix": {"enabled": False},
        "protocols": {"embedder": "none", "index_path": str(tmp / "protocols")},
        "media": {"dir": str(tmp / "media")},
        "queue": {"retry_base_s": 0.5, "retry_max_s": 2},
        "teams": TEAMS,
    }


def make_settings(tmp: Path, model_url: str, **overrides: Any) -> Settings:
    data = base_config(tmp, model_url)
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return Settings.model_validate(data)


async def wait_for(
    check: Callable[[], Awaitable[Any]], timeout: float = 15.0, every: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


@dataclass
class Gateway:
    app: App
    settings: Settings
    runtime: Runtime
    task: asyncio.Task[None]

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def device(self) -> Path:
        return Path(self.settings.sms.modems[0].device)

    async def protocols_ready(self, timeout: float = 120.0) -> None:
        """The library index is built in the background at start (keyword-only in these tests,
        so never the prebuilt one); a test about the library's advice waits for it."""

        async def ready() -> bool:
            return self.runtime.protocols is not None

        await wait_for(ready, timeout=timeout)

    def sms_in(self, number: str, text: str, modem: int = 0) -> None:
        inject_sms(Path(self.settings.sms.modems[modem].device), number, text)

    def sent(self) -> list[dict[str, Any]]:
        return read_outbox({m.name: Path(m.device) for m in self.settings.sms.modems})

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.sent() if m["to"] == number]

    async def wait_sent(
        self, number: str, count: int = 1, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            got = self.sent_to(number)
            return got if len(got) >= count else None

        result: list[dict[str, Any]] = await wait_for(check, timeout)
        return result

    async def rows(self, sql: str, *params: Any) -> list[Any]:
        return list(await self.db.fetchall(sql, params))

    async def idle(self, timeout: float = 20.0) -> None:
        """Everything received has been processed and every outbound row settled."""

        async def check() -> bool:
            pending_in = await self.rows(
                "SELECT COUNT(*) FROM inbox WHERE status IN ('queued','processing')"
            )
            pending_out = await self.rows(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('queued','sending')"
            )
            return pending_in[0][0] == 0 and pending_out[0][0] == 0

        await wait_for(check, timeout)


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, ready_s: float = 60.0) -> AsyncIterator[Gateway]:
    app = App(settings)
    task = asyncio.create_task(app.run(), name="gateway")

    async def ready() -> bool:
        if task.done():
            task.result()  # raise the start-up error
        return app.runtime is not None and app.runtime.ready.is_set()

    try:  # a start that fails or is slow is stopped too: its sessions and connections close
        await wait_for(ready, timeout=ready_s)
        assert app.runtime is not None
        yield Gateway(app, settings, app.runtime, task)
    finally:
        await stop_gateway(task)


async def stop_gateway(task: asyncio.Task[None], limit_s: float = 60.0) -> None:
    """Cancel (again each second: a cancellation can race and be lost) and insist the gateway
    stops within the limit; a hang fails loudly with every pending task's stack."""
    deadline = time.monotonic() + limit_s
    while not task.done():
        if time.monotonic() > deadline:
            for t in asyncio.all_tasks():
                t.print_stack(limit=8)
            raise AssertionError(f"gateway did not stop within {limit_s:.0f}s")
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


__all__ = ["Gateway", "OllamaStandIn", "make_settings", "running_gateway", "tool_call", "wait_for"]
