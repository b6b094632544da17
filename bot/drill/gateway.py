"""The gateway under drill: a real `lifeline run` subprocess on a generated config."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from config.settings import Settings

READY = "lifeline is running"


class GatewayFailed(RuntimeError):
    pass


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class GatewayProcess:
    def __init__(self, workdir: Path, config: dict[str, Any], *, module: str = "bot") -> None:
        self.workdir = workdir
        self.module = module  # bot.drill.simnet: the same CLI on a network that can bar a SIM
        Settings.model_validate(config)  # a bad [gateway] override fails before anything starts
        self.config_path = workdir / "lifeline.toml"
        self.config_path.write_text(tomli_w.dumps(config), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = workdir / "gateway-0.log"

    def _spawn(self) -> None:
        self.starts += 1
        self.log_path = self.workdir / f"gateway-{self.starts}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["COLUMNS"] = "200"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--config", str(self.config_path), "run"],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    async def start(self, limit_s: float = 240.0) -> float:
        """Start and wait until it says it is running; returns the time it was ready."""
        self._spawn()
        deadline = time.monotonic() + limit_s
        while True:
            text = await asyncio.to_thread(
                self.log_path.read_text, encoding="utf-8", errors="replace"
            )
            if READY in text:
                return time.time()
            if self.proc is not None and self.proc.poll() is not None:
                raise GatewayFailed(
                    f"gateway exited with {self.proc.returncode} during start-up; log "
                    f"{self.log_path}:\n{text[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise GatewayFailed(f"gateway not ready within {limit_s:.0f} s: {self.log_path}")
            await asyncio.sleep(0.2)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def kill9(self) -> None:
        if self.proc is not None and self.alive:
            self.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait, 30)

    async def stop(self, limit_s: float = 60.0) -> int | None:
        """SIGTERM (a clean stop), SIGKILL if it does not stop within ``limit_s``."""
        if self.proc is None or not self.alive:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, limit_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return await asyncio.to_thread(self.proc.wait, 30)


def gateway_config(
    workdir: Path,
    *,
    modems: int,
    send_per_minute: int,
    model_host: str,
    matrix: dict[str, Any],
    teams: list[dict[str, Any]],
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """Drill defaults: simulated modems and the drill homeserver in ``workdir``, keyword-only
    protocol search (no 4-minute embedding build), the scenario's teams; then its overrides."""
    base: dict[str, Any] = {
        "storage": {"path": str(workdir / "lifeline.db")},
        "model": {"host": model_host},
        "sms": {
            "modems": [
                {
                    "name": f"sim{i + 1}",
                    "device": str(workdir / f"modem-sim{i + 1}"),
                    "send_per_minute": send_per_minute,
                    "poll_interval_s": 0.5,
                }
                for i in range(modems)
            ]
        },
        "matrix": matrix,
        "dispatch": {"approval": "coordinator"},
        "protocols": {"embedder": "none", "index_path": str(workdir / "protocols")},
        "media": {"dir": str(workdir / "media")},
        "broadcasts": {"sitrep_every_min": 0},
        "teams": teams,
    }
    return merge(base, overrides)
