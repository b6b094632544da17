"""Block outbound network connections in tests (pitfall 7: "offline" tools that phone home).

Usage::

    from tests.harness.netguard import block_outbound

    with block_outbound() as guard:          # loopback + unix sockets stay allowed
        ...                                  # any other connect/DNS lookup is refused
    # leaving the block raises AssertionError if anything tried (even if the code swallowed it)

    with block_outbound(allow={("matrix.example.org", 443)}, fail=False) as guard:
        ...
    assert guard.attempts == []

Guards nest (the innermost decides and records), so a test may open its own guard inside
the autouse one from conftest. Or as a fixture: ``def test_x(no_network: NetGuard): ...`` after
``from tests.harness.netguard import no_network  # noqa: F401``.

Patched (process-wide, so worker threads are covered too): ``socket.socket.connect``,
``socket.socket.connect_ex``, ``socket.socket.sendto``, ``socket.create_connection`` and
``socket.getaddrinfo`` (asyncio and httpx resolve through it).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class BlockedConnectionError(ConnectionRefusedError):
    """Raised instead of connecting to a non-local peer."""


@dataclass(frozen=True)
class Attempt:
    kind: str  # "connect", "connect_ex", "sendto", "create_connection", "getaddrinfo"
    host: str
    port: int | None


@dataclass
class NetGuard:
    allow: frozenset[tuple[str, int]] = frozenset()
    attempts: list[Attempt] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, host: str, port: int | None) -> None:
        with self._lock:
            self.attempts.append(Attempt(kind, host, port))

    def describe(self) -> str:
        return ", ".join(f"{a.kind} {a.host}:{a.port}" for a in self.attempts)


def _is_local_host(host: str) -> bool:
    h = host.strip("[]").split("%", 1)[0].lower()
    if h in _LOCAL_NAMES or h == "":
        return True
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _split_address(address: Any) -> tuple[str, int | None] | None:
    """(host, port) of an INET address; None for unix-socket paths and other families."""
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[0], str):
        port = address[1]
        return address[0], port if isinstance(port, int) else None
    return None


# Active guards, innermost last. The innermost guard decides and records, so a test can open
# its own guard (with its own allow-list, or fail=False to provoke attempts on purpose) inside
# an autouse one. The socket functions are patched once, while any guard is active.
_ACTIVE: list[NetGuard] = []
_ACTIVE_LOCK = threading.Lock()
_ORIGINALS: dict[str, Any] = {}


def _current() -> NetGuard | None:
    with _ACTIVE_LOCK:
        return _ACTIVE[-1] if _ACTIVE else None


def _permitted(guard: NetGuard, host: str, port: int | None) -> bool:
    if _is_local_host(host):
        return True
    return port is not None and (host, port) in guard.allow


def _check(kind: str, address: Any) -> None:
    guard = _current()
    parts = _split_address(address)
    if guard is None or parts is None:
        return  # no guard, or an AF_UNIX path / netlink / … : not the internet
    host, port = parts
    if not _permitted(guard, host, port):
        guard.record(kind, host, port)
        raise BlockedConnectionError(f"netguard: outbound {kind} to {host}:{port} blocked")


def _connect(self: socket.socket, address: Any) -> None:
    _check("connect", address)
    _ORIGINALS["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check("connect_ex", address)
    result: int = _ORIGINALS["connect_ex"](self, address)
    return result


def _sendto(self: socket.socket, *args: Any) -> int:
    _check("sendto", args[-1])
    result: int = _ORIGINALS["sendto"](self, *args)
    return result


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    _check("create_connection", address)
    sock: socket.socket = _ORIGINALS["create_connection"](address, *args, **kwargs)
    return sock


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    guard = _current()
    if guard is not None:
        h = host.decode() if isinstance(host, bytes) else ("" if host is None else str(host))
        p = port if isinstance(port, int) else None
        if isinstance(port, str | bytes):
            try:
                p = int(port)
            except ValueError:
                p = None
        if not _permitted(guard, h, p):
            guard.record("getaddrinfo", h, p)
            raise socket.gaierror(socket.EAI_NONAME, f"netguard: lookup of {h} blocked")
    return _ORIGINALS["getaddrinfo"](host, port, *args, **kwargs)


def _install() -> None:
    _ORIGINALS.update(
        connect=socket.socket.connect,
        connect_ex=socket.socket.connect_ex,
        sendto=socket.socket.sendto,
        create_connection=socket.create_connection,
        getaddrinfo=socket.getaddrinfo,
    )
    socket.socket.connect = _connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign,assignment]
    socket.socket.sendto = _sendto  # type: ignore[method-assign,assignment]
    socket.create_connection = _create_connection
    socket.getaddrinfo = _getaddrinfo


def _uninstall() -> None:
    socket.socket.connect = _ORIGINALS["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _ORIGINALS["connect_ex"]  # type: ignore[method-assign]
    socket.socket.sendto = _ORIGINALS["sendto"]  # type: ignore[method-assign]
    socket.create_connection = _ORIGINALS["create_connection"]
    socket.getaddrinfo = _ORIGINALS["getaddrinfo"]
    _ORIGINALS.clear()


@contextmanager
def block_outbound(
    allow: set[tuple[str, int]] | None = None, *, fail: bool = True
) -> Iterator[NetGuard]:
    """Refuse connections to anything but loopback, unix sockets and ``allow`` (host, port).

    Every refused attempt is recorded in ``guard.attempts``; with ``fail`` (default) leaving
    the block raises AssertionError if there was any, even if the caller swallowed the error.
    Guards nest: the innermost one decides and records.
    """
    guard = NetGuard(allow=frozenset(allow or ()))
    with _ACTIVE_LOCK:
        if not _ACTIVE:
            _install()
        _ACTIVE.append(guard)
    try:
        yield guard
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE.remove(guard)
            if not _ACTIVE:
                _uninstall()
    if fail and guard.attempts:
        raise AssertionError(f"outbound network attempts were made: {guard.describe()}")


@pytest.fixture
def no_network() -> Iterator[NetGuard]:
    """A test body with every non-loopback connection refused; fails the test on any attempt."""
    with block_outbound() as guard:
        yield guard
