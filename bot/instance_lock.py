"""One owner per database, per modem and per drill homeserver.

A second `lifeline run` on the same database would re-queue the first one's in-flight messages as
"crashed" and send them again. A second gateway on ANOTHER database sharing a modem would read SMS
the first never sees (or the other way round) and give victims two case codes; sharing the drill
homeserver, its stop would kill the first gateway's homeserver. Each is held with an exclusive
flock for the life of the gateway; the kernel drops it when the process dies (even on kill -9), so a
crash never leaves it stale."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from config.settings import Settings


class AlreadyRunning(RuntimeError):
    """Another gateway holds the lock for this database, modem or drill homeserver."""


# Where locks for real modems (/dev/ttyUSB0: no sibling file can be made there) live; the
# directory for device locks on Linux, shared by every user and every mount namespace.
DEVICE_LOCK_DIRS = (Path("/run/lock"), Path("/var/lock"))


def lock_path_for(path: Path) -> Path:
    """The lock next to a file or directory we own: `var/lifeline.db` → `var/lifeline.db.lock`."""
    return path.with_name(path.name + ".lock")


def device_lock_dir() -> Path:
    for d in DEVICE_LOCK_DIRS:
        if d.is_dir() and os.access(d, os.W_OK | os.X_OK):
            return d
    return Path(tempfile.gettempdir())


def modem_lock_path(device: str | Path, *, simulated: bool) -> Path:
    """A simulated modem is a directory: its lock sits beside it. A real one (/dev/…, often a
    /dev/serial/by-id symlink) is locked under its resolved name in the device lock directory, so
    two spellings of one modem are one lock."""
    real = Path(device).absolute().resolve()
    if simulated:
        return lock_path_for(real)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(real).strip("/"))
    return device_lock_dir() / f"lifeline-modem-{name}.lock"


def _holder(fd: int) -> tuple[str, str]:
    """(pid, database) the holder wrote into the lock file; '?' when unknown."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    pid, _, db = text.partition("\n")
    return pid.strip() or "?", db.strip() or "?"


@contextlib.contextmanager
def exclusive(lock: Path, owner_db: Path, refuse: Callable[[str, str], str]) -> Iterator[None]:
    """Hold `lock` (flock, exclusive) while the block runs; the file names our pid and database.
    On conflict raise AlreadyRunning(refuse(holder pid, holder database))."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, db = _holder(fd)
        os.close(fd)
        raise AlreadyRunning(refuse(pid, db)) from None
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n{owner_db.absolute()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def single_instance(db_path: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive(
        lock_path_for(db_path),
        db_path,
        lambda pid, _db: (
            f"another Lifeline gateway (pid {pid}) is already running with "
            f"{db_path.resolve()}; stop it first (two would send every reply twice)"
        ),
    )


def holder_pid(lock: Path) -> int | None:
    """The pid written in a lock file if that process is alive (informational only: a lock is
    never probed with flock, which could make a gateway starting at that moment fail)."""
    try:
        first = lock.read_text(errors="replace").partition("\n")[0].strip()
        pid = int(first)
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _modem_refusal(name: str, where: Path) -> Callable[[str, str], str]:
    def refuse(pid: str, other: str) -> str:
        return (
            f"modem '{name}' ({where}) is in use by another Lifeline gateway (pid {pid}, "
            f"database {other}); a modem can have one owner: stop that gateway or give this "
            "one its own modem"
        )

    return refuse


@contextlib.contextmanager
def own_devices(s: Settings) -> Iterator[None]:
    """Take every modem and the drill homeserver directory for this gateway, or refuse."""
    db = s.storage.path
    with contextlib.ExitStack() as stack:
        if s.sms.enabled:
            for m in s.sms.modems:
                where = Path(m.device).absolute()
                stack.enter_context(
                    exclusive(
                        modem_lock_path(m.device, simulated=m.is_dummy),
                        db,
                        _modem_refusal(m.name, where),
                    )
                )
        if s.matrix.enabled and not s.matrix.homeserver:
            drill = s.matrix.drill_dir.absolute()
            stack.enter_context(
                exclusive(
                    lock_path_for(drill),
                    db,
                    lambda pid, other: (
                        f"the drill homeserver at {drill} belongs to another Lifeline gateway "
                        f"(pid {pid}, database {other}); stop that gateway or set "
                        "[matrix].drill_dir to a directory of this gateway's own"
                    ),
                )
            )
        yield
