"""A local Synapse homeserver on 127.0.0.1, for the test suite and the gateway's drill mode.

`LocalSynapse` is synchronous (subprocess + blocking HTTP on 127.0.0.1); async callers go through
`asyncio.to_thread` (see `bot.drill.homeserver.ensure_drill`, which sets up drill mode on it).
Secrets, the signing key, the database and the chosen port live in `workdir` and survive restarts.
No federation, no telemetry, no key servers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERVER_NAME = "localhost"
HTTP_TIMEOUT_S = 10.0

# string.Template placeholders: $port $dir $secret $macaroon $form
_CONFIG = string.Template("""\
# Written by lifeline (bot/synapse_local.py) at every start; edits are overwritten.
server_name: localhost
public_baseurl: http://127.0.0.1:$port/
report_stats: false
listeners:
  - port: $port
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: $dir/homeserver.db
media_store_path: $dir/media_store
signing_key_path: $dir/localhost.signing.key
pid_file: $dir/homeserver.pid
registration_shared_secret: $secret
macaroon_secret_key: $macaroon
form_secret: $form
enable_registration: false
bcrypt_rounds: 4
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
allow_public_rooms_over_federation: false
presence:
  enabled: false
url_preview_enabled: false
enable_metrics: false
max_upload_size: 100M
background_updates:
  sleep_enabled: false
rc_message: &relaxed {per_second: 1000, burst_count: 1000}
rc_registration: *relaxed
rc_login:
  address: *relaxed
  account: *relaxed
  failed_attempts: *relaxed
rc_joins:
  local: *relaxed
  remote: *relaxed
rc_joins_per_room: *relaxed
rc_invites:
  per_room: *relaxed
  per_user: *relaxed
  per_issuer: *relaxed
rc_room_creation: *relaxed
rc_media_create: *relaxed
rc_3pid_validation: *relaxed
rc_presence:
  per_user: *relaxed
rc_profile: *relaxed
rc_user_directory: *relaxed
rc_delayed_event_mgmt: *relaxed
rc_reports: *relaxed
""")


class SynapseError(RuntimeError):
    """Synapse failed to start, stop or answer; the message carries the log tail."""


class MatrixHTTPError(SynapseError):
    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(f"HTTP {status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    access_token: str
    device_id: str
    password: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def http_json(
    method: str,
    url: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout: float = HTTP_TIMEOUT_S,
) -> dict[str, Any]:
    """Blocking JSON call to the local homeserver; Matrix errors become MatrixHTTPError."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, method=method, data=data, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            out: dict[str, Any] = json.loads(r.read() or b"{}")
            return out
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read() or b"{}")
        except ValueError:
            err = {}
        raise MatrixHTTPError(
            exc.code, str(err.get("errcode", "")), str(err.get("error", exc.reason))
        ) from exc


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class LocalSynapse:
    """One Synapse process bound to 127.0.0.1, state kept in `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self._requested_port = port
        self.port: int = port or 0
        self.log_path = self.workdir / "synapse.log"
        self.cfg_path = self.workdir / "homeserver.yaml"
        self.secrets_path = self.workdir / "secrets.json"
        self.port_path = self.workdir / "port"
        self.pid_path = self.workdir / "lifeline-synapse.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None
        self.startup_seconds: float | None = None

    # ---------------------------------------------------------------- state files
    @property
    def url(self) -> str:
        if not self.port:
            raise SynapseError("LocalSynapse has no port yet; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return self._adopted_pid

    def _secrets(self) -> dict[str, str]:
        if self.secrets_path.exists():
            data: dict[str, str] = json.loads(self.secrets_path.read_text(encoding="utf-8"))
            return data
        data = {
            "registration_shared_secret": secrets.token_hex(24),
            "macaroon_secret_key": secrets.token_hex(24),
            "form_secret": secrets.token_hex(24),
        }
        write_private(self.secrets_path, json.dumps(data))
        return data

    @property
    def shared_secret(self) -> str:
        return self._secrets()["registration_shared_secret"]

    def _choose_port(self) -> int:
        if self._requested_port:
            return self._requested_port
        if self.port_path.exists():
            with contextlib.suppress(ValueError):
                saved = int(self.port_path.read_text().strip())
                if not _port_busy(saved):
                    return saved
        return free_port()

    def _write_config(self) -> None:
        s = self._secrets()
        self.cfg_path.write_text(
            _CONFIG.substitute(
                port=self.port,
                dir=self.workdir,
                secret=s["registration_shared_secret"],
                macaroon=s["macaroon_secret_key"],
                form=s["form_secret"],
            ),
            encoding="utf-8",
        )
        os.chmod(self.cfg_path, 0o600)

    def _ensure_signing_key(self) -> None:
        key = self.workdir / "localhost.signing.key"
        if key.exists():
            return
        from signedjson.key import generate_signing_key, write_signing_keys

        with key.open("w", encoding="utf-8") as f:
            write_signing_keys(f, [generate_signing_key("a_" + secrets.token_hex(2))])
        os.chmod(key, 0o600)

    # ---------------------------------------------------------------- lifecycle
    def is_up(self) -> bool:
        if not self.port:
            return False
        try:
            http_json("GET", f"{self.url}/_matrix/client/versions", timeout=2.0)
        except (OSError, SynapseError, ValueError):
            return False
        return True

    def adopt_running(self) -> bool:
        """Reuse a Synapse started from this workdir earlier (pid + port files), if it answers."""
        if not (self.pid_path.exists() and self.port_path.exists()):
            return False
        try:
            pid = int(self.pid_path.read_text().strip())
            port = int(self.port_path.read_text().strip())
        except ValueError:
            return False
        if not _pid_alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if cmdline and (
            b"synapse.app.homeserver" not in cmdline or str(self.cfg_path).encode() not in cmdline
        ):
            return False  # a reused pid, or another directory's homeserver
        self.port = port
        if not self.is_up():
            return False
        self._adopted_pid = pid
        log.info("synapse: reusing running homeserver pid %d at %s", pid, self.url)
        return True

    def start(self, timeout: float = 60.0) -> None:
        if self.pid is not None and self.is_up():
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "media_store").mkdir(exist_ok=True)
        self.port = self._choose_port()
        self._ensure_signing_key()
        self._write_config()
        self.port_path.write_text(str(self.port))
        t0 = time.monotonic()
        with self.log_path.open("ab") as logf:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.cfg_path)],
                cwd=self.workdir,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: a Ctrl-C in the parent is ours
            )
        self._adopted_pid = None
        self.pid_path.write_text(str(self._proc.pid))
        while True:
            rc = self._proc.poll()
            if rc is not None:
                raise SynapseError(f"synapse exited rc={rc} during start:\n{self.log_tail()}")
            if self.is_up():
                break
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise SynapseError(f"synapse not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - t0
        log.info(
            "synapse: up at %s (pid %d, %.1fs)", self.url, self._proc.pid, self.startup_seconds
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the homeserver this object started; one it adopted is left running."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # graceful: flushes sqlite
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log.warning("synapse: pid %d ignored SIGTERM; SIGKILL", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.info("synapse: stopped (pid %d)", proc.pid)
            with contextlib.suppress(FileNotFoundError):
                self.pid_path.unlink()
        elif self._adopted_pid is not None:
            # Only ever stop a process we started: a reused homeserver may serve someone else.
            pid, self._adopted_pid = self._adopted_pid, None
            log.warning(
                "synapse: pid %d was started by an earlier process, not by this one; left "
                "running (stop it with `kill %d` if nothing uses %s)",
                pid,
                pid,
                self.workdir,
            )

    def restart(self, timeout: float = 60.0) -> None:
        port = self.port
        self.stop()
        if port:
            self._requested_port = port  # keep the URL stable for connected clients
            deadline = time.monotonic() + 10
            while _port_busy(port) and time.monotonic() < deadline:
                time.sleep(0.1)
        self.start(timeout=timeout)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no synapse log)"
        return "\n".join(lines[-n:])

    # ---------------------------------------------------------------- accounts
    def login(self, localpart: str, password: str) -> Account:
        out = http_json(
            "POST",
            f"{self.url}/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password,
            },
        )
        return Account(out["user_id"], out["access_token"], out["device_id"], password)

    def register(self, localpart: str, password: str, admin: bool = False) -> Account:
        """Shared-secret registration; an existing user is logged in with `password` instead."""
        url = f"{self.url}/_synapse/admin/v1/register"
        nonce = http_json("GET", url)["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join(
                [
                    nonce.encode(),
                    localpart.encode(),
                    password.encode(),
                    b"admin" if admin else b"notadmin",
                ]
            )
        )
        try:
            out = http_json(
                "POST",
                url,
                {
                    "nonce": nonce,
                    "username": localpart,
                    "password": password,
                    "admin": admin,
                    "mac": mac.hexdigest(),
                },
            )
        except MatrixHTTPError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise
            return self.login(localpart, password)
        return Account(out["user_id"], out["access_token"], out["device_id"], password)
