"""The gateway as a real subprocess (`python -m bot --config CFG run`) and the CLI around it:
config writing, start/kill/SIGTERM, `sim` in and out, read-only queries of its database, and the
dummy modems' record of accepted SMS. Used by the end-to-end, crash and ownership tests and by
bench/."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w

from bot.sim import inject_sms, read_outbox
from bot.store.db import Database
from tests.harness.gateway import base_config
from tests.harness.ollama_standin import OllamaStandIn

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").is_dir() else sys.executable
VICTIM = "+8801712345678"
READY_MARKERS = ("lifeline is running", "worker model started", "-> up")

# ---- config ------------------------------------------------------------------------------------

to_toml = tomli_w.dumps  # the one TOML writer (also bot/drill/gateway.py): tomli-w


def config_data(tmp: Path, model_url: str, **overrides: dict[str, Any]) -> dict[str, Any]:
    data = base_config(tmp, model_url)
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def write_config(tmp: Path, model_url: str, **overrides: dict[str, Any]) -> Path:
    path = tmp / "lifeline.toml"
    path.write_text(tomli_w.dumps(config_data(tmp, model_url, **overrides)), encoding="utf-8")
    return path


# ---- the gateway process -----------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "200"  # rich wraps the banner at 80 otherwise
    return env


class GatewayProcess:
    """`python -m bot --config CFG run` with its stderr in a file; CLI helpers around it."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.tmp = config.parent
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = self.tmp / "gateway-0.log"

    @property
    def settings_data(self) -> dict[str, Any]:
        return tomllib.loads(self.config.read_text(encoding="utf-8"))

    @property
    def devices(self) -> dict[str, Path]:
        return {m["name"]: Path(m["device"]) for m in self.settings_data["sms"]["modems"]}

    @property
    def device(self) -> Path:
        return next(iter(self.devices.values()))

    @property
    def db_path(self) -> Path:
        return Path(self.settings_data["storage"]["path"])

    def start(self, *, wait_ready: bool = True, timeout: float = 45.0) -> float:
        """Start the process; returns seconds until it logged that it is ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_path = self.tmp / f"gateway-{self.starts}.log"
        started = time.monotonic()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "bot", "--config", str(self.config), "run"],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        if wait_ready:
            self.wait_log(*READY_MARKERS, timeout=timeout)
        return time.monotonic() - started

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def all_logs(self) -> str:
        return "\n".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(self.tmp.glob("gateway-*.log"))
        )

    def wait_log(self, *needles: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if all(n in text for n in needles):
                return text
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not logged within {timeout}s:\n{text[-3000:]}")
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit). Kills and fails after ``timeout``."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"no exit within {timeout}s of SIGTERM:\n{self.log_text()[-3000:]}"
            ) from None
        return code, time.monotonic() - started

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # -- CLI and simulated network -------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "bot", "--config", str(self.config), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(),
            check=False,
        )

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def sms_in(self, number: str, text: str, modem: int = 0) -> None:
        """Fast path for tests that inject many messages (same code as `sim sms`)."""
        inject_sms(list(self.devices.values())[modem], number, text)

    def sent(self) -> list[dict[str, Any]]:
        return read_outbox(self.devices)

    def sim_inbox_empty(self) -> bool:
        return not any(any((d / "sms" / "1").glob("[0-9]*")) for d in self.devices.values())

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the gateway's database from outside (WAL: readers never block the writer)."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()


def wait_until(check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


def make_db(path: Path) -> None:
    """The database as `lifeline run` leaves it: created, migrated."""

    async def go() -> None:
        db = Database(path)
        await db.open()
        await db.close()

    asyncio.run(go())


def dead_url() -> str:
    dead = OllamaStandIn().start()
    url = dead.url
    dead.stop()  # nothing listens there now
    return url


def sent_keys(gw: GatewayProcess) -> Counter[str]:
    """Accepted SMS per idempotency-key digest (one file per accepted message)."""
    return Counter(
        p.name.split("-", 1)[1]
        for device in gw.devices.values()
        for p in (device / "sent").glob("*.smsbackup")
    )


def key_digest(idem_key: str) -> str:
    return hashlib.sha256(idem_key.encode()).hexdigest()[:16] + ".smsbackup"


def idle(gw: GatewayProcess) -> bool:
    pending = gw.query(
        "SELECT (SELECT COUNT(*) FROM inbox WHERE status IN ('queued','processing'))"
        " + (SELECT COUNT(*) FROM outbox WHERE status IN ('queued','sending'))"
    )
    return pending[0][0] == 0 and gw.sim_inbox_empty()
