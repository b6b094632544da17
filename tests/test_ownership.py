"""One owner per modem and per drill homeserver, across gateways on DIFFERENT databases.

Two real `lifeline run` processes: the second one has its own database (another
[storage].path) but the same modem or the same drill homeserver directory. It must refuse with
exit 4 and a message naming the owner, leave the first gateway's modem and homeserver alone,
and start normally once the first is gone (the kernel drops the lock, even on kill -9)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from bot.synapse_local import LocalSynapse
from tests.harness.process import VICTIM, GatewayProcess, dead_url, wait_until, write_config

EXIT_ALREADY_RUNNING = 4


def wait_exit(gw: GatewayProcess, timeout: float) -> int | None:
    """The process's exit code, or None if it is still running after ``timeout``."""
    assert gw.proc is not None
    try:
        return gw.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def test_second_gateway_on_another_database_cannot_take_the_modem(tmp_path: Path) -> None:
    url = dead_url()  # degraded mode is enough: acks come from triage, no model needed
    first = GatewayProcess(write_config(tmp_path, url))
    modem = first.devices["sim1"]
    other = tmp_path / "other"
    other.mkdir()
    second = GatewayProcess(
        write_config(
            other,
            url,
            sms={"modems": [{"name": "sim1", "device": str(modem), "poll_interval_s": 0.1}]},
        )
    )
    assert second.db_path != first.db_path
    try:
        first.start()
        assert first.proc is not None
        second.start(wait_ready=False)
        code = wait_exit(second, 60)
        if code is None:
            second.terminate()
        assert code == EXIT_ALREADY_RUNNING, second.log_text()[-3000:]
        refusal = second.log_text()
        assert f"modem 'sim1' ({modem})" in refusal, refusal
        assert f"pid {first.proc.pid}" in refusal and str(first.db_path) in refusal, refusal
        assert "Traceback" not in refusal
        assert not second.db_path.exists() or not second.query("SELECT id FROM inbox")

        # The first gateway still owns the modem: one SMS, one case, one database.
        first.sms_in(VICTIM, "Water rising, 3 of us on the roof")
        wait_until(lambda: [m for m in first.sent() if m["to"] == VICTIM], timeout=20)
        assert len(first.query("SELECT id FROM incidents")) == 1

        # The kernel drops the lock with its holder, even on kill -9: the modem is free again.
        first.kill9()
        second.start()
        code, _ = second.terminate()
        assert code == 0, second.log_text()[-3000:]
    finally:
        second.stop_quietly()
        first.stop_quietly()


def test_second_gateway_never_takes_or_stops_the_first_ones_drill_homeserver(
    tmp_path: Path,
) -> None:
    url = dead_url()
    drill = tmp_path / "drill"
    matrix = {"enabled": True, "drill_dir": str(drill), "store_path": str(tmp_path / "store")}
    first = GatewayProcess(write_config(tmp_path, url, matrix=matrix))
    other = tmp_path / "other"
    other.mkdir()
    # Its own database and its own modem; only the drill homeserver directory is shared.
    second = GatewayProcess(
        write_config(other, url, matrix={**matrix, "store_path": str(other / "store")})
    )
    assert second.device != first.device and second.db_path != first.db_path
    try:
        first.start()
        first.wait_log("Local drill homeserver", timeout=180)
        synapse = LocalSynapse(drill)
        assert synapse.adopt_running()  # read its pid and port (adopting never stops it)
        pid = synapse.pid
        assert pid is not None

        second.start(wait_ready=False)
        code = wait_exit(second, 60)
        if code is None:  # it ran: stop it the way an operator would, then judge
            second.terminate()
        assert code == EXIT_ALREADY_RUNNING, second.log_text()[-3000:]
        refusal = second.log_text()
        assert f"drill homeserver at {drill}" in refusal, refusal
        assert first.proc is not None and f"pid {first.proc.pid}" in refusal, refusal
        assert synapse.is_up(), "the first gateway's homeserver was stopped by the second"
        os.kill(pid, 0)
    finally:
        second.stop_quietly()
        if first.proc is not None and first.proc.poll() is None:
            first.terminate()
    # The first gateway started that homeserver, so it stops it with itself.
    deadline = time.monotonic() + 15
    while synapse.is_up() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not synapse.is_up()
