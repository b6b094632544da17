"""One gateway per database: a second `lifeline run` would re-queue the first one's in-flight
messages as "crashed" and send them again, share its modems and its Matrix device."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class AlreadyRunning(RuntimeError):
    """Another gateway holds the lock for this database."""


def lock_path_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


@contextlib.contextmanager
def single_instance(db_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock next to the database for the life of the gateway. The
    kernel drops it when the process dies (even on kill -9), so a crash never leaves it stale."""
    path = lock_path_for(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise AlreadyRunning(
            f"another Lifeline gateway (pid {holder}) is already running with {db_path.resolve()}; "
            "stop it first (two would send every reply twice)"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock
