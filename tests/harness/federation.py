"""Two or three Synapse homeservers on 127.0.0.1 that federate with each other (no internet), and
the federated regional room (bot/region) on them.

Each server is a ``bot.synapse_local.LocalSynapse`` (same start/stop/registration) with a second
listener: the client API stays plain HTTP (``url``, what tests and gateways talk to); federation
is a TLS listener (Synapse always speaks https to other servers; the "federation" resource also
serves the /_matrix/key/v2 signing keys). What makes it work offline (checked with Synapse 1.163):

- ``server_name`` is ``localhost:<tls port>``: an explicit port makes Synapse skip .well-known and
  SRV lookups and connect straight there. MXIDs look like ``@bot:localhost:8449``.
- one self-signed certificate (SAN localhost, 127.0.0.1) for every server, and
  ``federation_verify_certificates: false``.
- ``ip_range_whitelist`` 127/8 and ::1: the default blacklist blocks loopback for all outbound
  HTTP, federation included ("no results for hostname lookup: localhost", a 502 on invite).
- ``trusted_key_servers: []``: each server fetches the others' keys from them, never matrix.org.
- ``federation_domain_whitelist``: only these servers; destination retry intervals shortened
  (Synapse backs a failed destination off for up to a day; a test's cut lasts seconds).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.synapse_local import Account, LocalSynapse, SynapseError, free_port, http_json

RELAXED = {"per_second": 1000, "burst_count": 1000}


def make_self_signed_cert(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


class FederatedSynapse(LocalSynapse):
    """A LocalSynapse that also federates (TLS listener on ``fed_port``) with ``peers``."""

    def __init__(self, workdir: Path, cert: Path, key: Path) -> None:
        super().__init__(workdir)
        self.cert, self.key = cert, key
        self.fed_port = free_port()  # kept for restarts: it is part of the server name
        self.server_name = f"localhost:{self.fed_port}"
        self.peers: list[str] = []

    def _write_config(self) -> None:
        s = self._secrets()
        d = self.workdir
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"http://127.0.0.1:{self.port}/",
            "report_stats": False,
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "resources": [{"names": ["client"], "compress": False}],
                },
                {
                    "port": self.fed_port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": True,
                    "resources": [{"names": ["federation"], "compress": False}],
                },
            ],
            "tls_certificate_path": str(self.cert),
            "tls_private_key_path": str(self.key),
            "federation_verify_certificates": False,
            "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [self.server_name, *self.peers],
            "federation": {
                "destination_min_retry_interval": "1s",
                "destination_max_retry_interval": "5s",
                "destination_retry_multiplier": 1.5,
            },
            "database": {"name": "sqlite3", "args": {"database": f"{d}/homeserver.db"}},
            "media_store_path": f"{d}/media_store",
            "signing_key_path": f"{d}/localhost.signing.key",
            "pid_file": f"{d}/homeserver.pid",
            "registration_shared_secret": s["registration_shared_secret"],
            "macaroon_secret_key": s["macaroon_secret_key"],
            "form_secret": s["form_secret"],
            "enable_registration": False,
            "bcrypt_rounds": 4,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "enable_metrics": False,
            "background_updates": {"sleep_enabled": False},
            "rc_federation": {
                "window_size": 1000,
                "sleep_limit": 1000,
                "sleep_delay": 1,
                "reject_limit": 1000,
                "concurrent": 100,
            },
            "rc_message": RELAXED,
            "rc_registration": RELAXED,
            "rc_room_creation": RELAXED,
            "rc_login": {"address": RELAXED, "account": RELAXED, "failed_attempts": RELAXED},
            "rc_joins": {"local": RELAXED, "remote": RELAXED},
            "rc_joins_per_room": RELAXED,
            "rc_invites": {"per_room": RELAXED, "per_user": RELAXED, "per_issuer": RELAXED},
            "rc_profile": RELAXED,
        }
        self.cfg_path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")  # YAML reads JSON
        os.chmod(self.cfg_path, 0o600)

    def start(self, timeout: float = 60.0) -> None:
        """Start (again): on the same ports, so gateways and peers find it where it was."""
        super().start(timeout=timeout)
        self._requested_port = self.port
        self._wait_federation(time.monotonic() + timeout)

    def _wait_federation(self, deadline: float) -> None:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        url = f"https://127.0.0.1:{self.fed_port}/_matrix/federation/v1/version"
        while True:
            try:
                with contextlib.closing(urllib.request.urlopen(url, timeout=5, context=ctx)):
                    return
            except (urllib.error.URLError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise SynapseError(f"federation listener not ready: {exc}") from exc
                time.sleep(0.1)

    def api(self, method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        return http_json(method, self.url + path, body, token=token, timeout=30)


@contextlib.contextmanager
def federation(root: Path, count: int = 2) -> Iterator[list[FederatedSynapse]]:
    """``count`` federating homeservers under ``root``, started; stopped afterwards."""
    cert, key = root / "tls.crt", root / "tls.key"
    root.mkdir(parents=True, exist_ok=True)
    make_self_signed_cert(cert, key)
    servers = [FederatedSynapse(root / f"hs{i}", cert, key) for i in range(count)]
    names = [s.server_name for s in servers]
    for s in servers:
        s.peers = [n for n in names if n != s.server_name]
    try:
        for s in servers:
            s.start(timeout=120)
        yield servers
    finally:
        for s in servers:
            s.stop()


def quote(room: str) -> str:
    return urllib.parse.quote(room, safe="")


def create_regional_room(
    home: FederatedSynapse, admin: Account, alias: str = "flood-region"
) -> tuple[str, str]:
    """The regional room on ``home``, public (any gateway bot may join it by alias, over
    federation), unencrypted (its content is for every district's staff). Returns
    (room id, alias)."""
    out = home.api(
        "POST",
        "/_matrix/client/v3/createRoom",
        admin.access_token,
        {"preset": "public_chat", "name": "flood region", "room_alias_name": alias},
    )
    return str(out["room_id"]), f"#{alias}:{home.server_name}"


def messages(hs: FederatedSynapse, token: str, room_id: str) -> list[dict[str, Any]]:
    """Every m.room.message in the room as ``hs`` has it, oldest first (paged backwards from the
    end, which makes Synapse backfill gaps from the other servers)."""
    out: list[dict[str, Any]] = []
    frm = ""
    while True:
        qs = f"dir=b&limit=200{'&from=' + urllib.parse.quote(frm) if frm else ''}"
        page = hs.api("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?{qs}", token)
        out.extend(e for e in page.get("chunk", []) if e.get("type") == "m.room.message")
        if not page.get("chunk") or "end" not in page:
            break
        frm = page["end"]
    return list(reversed(out))


def region_events(
    hs: FederatedSynapse, token: str, room_id: str, field: str
) -> list[dict[str, Any]]:
    """The machine parts (``field``) of the room's messages, oldest first, with their sender."""
    return [
        {**e["content"][field], "sender": e["sender"]}
        for e in messages(hs, token, room_id)
        if isinstance(e.get("content"), dict) and field in e["content"]
    ]


def join(hs: FederatedSynapse, acct: Account, room: str) -> str:
    out = hs.api("POST", f"/_matrix/client/v3/join/{quote(room)}", acct.access_token, {})
    return str(out["room_id"])
