"""One aiosqlite connection with durable PRAGMAs, numbered migrations, serialised transactions.

SQLite allows one writer; a single connection plus an asyncio.Lock keeps transactions from
interleaving their statements (aiosqlite runs every call on one thread, in order)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.aio import finish, raise_if_cancelling
from bot.backoff import delay
from bot.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)
# aiosqlite logs every statement with its parameters at DEBUG: message bodies and phone numbers.
logging.getLogger("aiosqlite").setLevel(logging.INFO)


class StorageError(Exception):
    """The database cannot be written (disk full, read-only, corrupt): loud, never silent."""


class DatabaseMissing(StorageError):
    """No database file where one was expected (``open(create=False)``)."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()
        super().__init__(f"no Lifeline database at {self.path}")


BUSY_ERROR_EVERY_S = 60.0  # a write kept waiting this long is an ERROR in the log, once a minute
STOP_GRACE_S = 10.0  # how long a write waiting for the lock may hold up a stop


class _Busy(Exception):
    """Another connection held the write lock for longer than busy_timeout."""


def _failure(path: Path, what: str, exc: sqlite3.Error) -> Exception:
    """Busy (another connection's write lock outlasted busy_timeout) is transient; the rest
    (disk full, read-only, corrupt; SQLITE_LOCKED, a conflict inside one connection that no
    wait clears) is a StorageError."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_BUSY:
        return _Busy(f"{path}: {exc}")
    return StorageError(f"{what} ({path}): {exc}")


class Database:
    busy_ms = 5000  # SQLite's busy_timeout on every connection

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Called after every commit of a transaction (on the event loop; must not block): the
        # incident board's live view looks what changed (bot/board/events.py).
        self.on_commit: list[Callable[[], None]] = []
        self._side: aiosqlite.Connection | None = None  # short writes that must not queue
        self._side_lock = asyncio.Lock()
        self._reader: aiosqlite.Connection | None = None  # reads that must not queue (read())
        self._reader_lock = asyncio.Lock()
        self._closed = False  # after close(): no late write may open a new connection
        # Run inside every transaction just before COMMIT (bot/region numbers the changes the
        # transaction made, so they commit together). A hook must not raise for its own failures.
        self.before_commit: list[Callable[[aiosqlite.Connection], Awaitable[None]]] = []

    async def open(self, *, create: bool = True) -> None:
        """Open (creating it and its directory if needed) and migrate.

        ``create=False`` is for commands that only inspect: a missing file raises
        DatabaseMissing instead of an empty database being made wherever the command ran."""
        memory = str(self.path) == ":memory:"
        target: str | Path = self.path
        if not memory and create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not memory:
            if not self.path.is_file():
                raise DatabaseMissing(self.path)
            target = f"{self.path.absolute().as_uri()}?mode=rw"  # never creates the file
        # WAL: readers never block the writer. synchronous=FULL: a power cut (floods!)
        # cannot lose a commit that an upstream ack or DeleteSMS relied on.
        pragmas = (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            f"busy_timeout={self.busy_ms}",
            "wal_autocheckpoint=1000",
        )
        try:
            self._conn = await _connect(target, pragmas, uri=not isinstance(target, Path))
            self._closed = False
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc
        self._conn.row_factory = aiosqlite.Row
        await self._migrate()

    async def close(self) -> None:
        """Closes every connection, to the end even if cancelled meanwhile: an aiosqlite
        connection left open keeps its non-daemon thread, and the process, alive."""
        await finish(self._close())

    async def _close(self) -> None:
        self._closed = True
        async with self._reader_lock:  # a read in flight finishes first
            reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(sqlite3.Error):
                await reader.close()
        conn, self._conn = self._conn, None
        try:
            # After the side write in flight (it may be opening the side connection): it is
            # recorded, and the connection it opened is closed here, not left behind.
            async with self._side_lock:
                side, self._side = self._side, None
                if side is not None:
                    with contextlib.suppress(sqlite3.Error):
                        await side.close()
        finally:
            if conn is not None:
                try:
                    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except Exception:  # a checkpoint is an optimisation: close anyway
                    log.warning("WAL checkpoint at close failed", exc_info=True)
                finally:
                    await conn.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StorageError("database is not open")
        return self._conn

    async def _migrate(self) -> None:
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            log.info("database %s: applying migration %d", self.path, version)
            try:
                await self.conn.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                await self._rollback_quietly()
                raise StorageError(f"migration {version} failed: {exc}") from exc

    async def _rollback_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            await self.conn.execute("ROLLBACK")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception (CancelledError included).

        BEGIN, COMMIT and ROLLBACK are shielded: a cancellation arriving while one of them is
        in flight must not leave the single connection inside a transaction forever."""
        async with self._lock:
            conn = self.conn
            await self._until_free(self._begin)
            try:
                yield conn
                for hook in self.before_commit:
                    await hook(conn)
            except BaseException:
                await asyncio.shield(self._rollback_quietly())
                raise
            try:
                await self._shielded("COMMIT")
            except sqlite3.Error as exc:
                await asyncio.shield(self._rollback_quietly())
                raise StorageError(f"commit failed ({self.path}): {exc}") from exc
        for committed in self.on_commit:
            committed()

    async def _shielded(self, sql: str) -> None:
        """BEGIN or COMMIT, finished even if the caller is cancelled meanwhile (and then rolled
        back if still open) before the cancellation goes on."""
        statement = asyncio.ensure_future(self.conn.execute(sql))
        try:
            await asyncio.shield(statement)
        except asyncio.CancelledError:
            await self._settle(statement)
            raise

    async def _settle(self, statement: asyncio.Future[Any]) -> None:
        """Cancelled around BEGIN/COMMIT: let the statement finish, then roll back whatever
        is still open (after a finished COMMIT there is nothing to roll back)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(statement), timeout=30)
        if self.conn.in_transaction:
            await asyncio.shield(self._rollback_quietly())

    async def commit_now(self, sql: str, params: Iterable[Any] = ()) -> None:
        """One statement, committed on a second connection with its own thread.

        It does not wait for the main connection's queue of statements or its lock (a slow
        transaction there cannot delay it). For the commit that records an SMS as sent: the
        duplicate window after a crash. A busy database is transient: SQLite's busy handler
        polls, and a burst of back-to-back transactions on the main connection can starve it
        past busy_timeout; giving up then would stop the gateway and send the SMS again after
        the restart, so it retries (logged) until the write goes in."""
        if str(self.path) == ":memory:":
            await self.execute(sql, params)  # a second connection would be another database
            return
        values = tuple(params)
        await self._until_free(lambda: self._write_on_side(sql, values))

    async def _until_free(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` until no other connection holds the write lock past busy_timeout.

        Under a stop it gives up after STOP_GRACE_S (the cancellation is raised): a lock held
        for hours must not hold the shutdown too; the unrecorded send stays 'sending' for the
        restart's recovery, as after a crash."""
        started = time.monotonic()
        next_error = started + BUSY_ERROR_EVERY_S
        for attempt in itertools.count(1):
            try:
                await write()
            except _Busy as exc:
                now = time.monotonic()
                if now - started > STOP_GRACE_S:
                    raise_if_cancelling(exc)
                level = logging.WARNING if attempt == 1 else logging.DEBUG
                if now >= next_error:  # still locked: someone must look (an open sqlite3 shell?)
                    level, next_error = logging.ERROR, now + BUSY_ERROR_EVERY_S
                log.log(
                    level,
                    "write waits: %s (try %d, %.0f s; retrying)",
                    exc,
                    attempt,
                    now - started,
                )
                await asyncio.sleep(delay(attempt, base=0.05, cap=2.0))
                continue
            if attempt > 1:
                log.warning("write went in after %d tries", attempt)
            return

    async def _begin(self) -> None:
        try:
            await self._shielded("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _failure(self.path, "cannot begin transaction", exc) from exc

    async def _write_on_side(self, sql: str, values: tuple[Any, ...]) -> None:
        try:
            async with self._side_lock:
                if self._closed:
                    # A send that finished after shutdown began: a new connection now would
                    # never be closed (and its non-daemon thread would keep the process alive).
                    raise StorageError(f"write after close ({self.path})")
                if self._side is None:
                    pragmas = (
                        "synchronous=FULL",
                        "foreign_keys=ON",
                        f"busy_timeout={self.busy_ms}",
                    )
                    self._side = await _connect(self.path, pragmas)
                await self._side.execute(sql, values)
        except sqlite3.Error as exc:
            raise _failure(self.path, "write failed", exc) from exc

    async def read(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """A read on a third connection with its own thread: in WAL mode it sees every
        committed transaction and waits for neither the main connection's lock nor its queue
        of statements. For the incident board (bot/store/board.py), whose page loads and live
        looks must not queue behind the intake's transactions in a burst, nor delay them."""
        if str(self.path) == ":memory:":
            return await self.fetchall(sql, params)  # a second connection would be another database
        try:
            async with self._reader_lock:
                if self._closed:
                    raise StorageError(f"read after close ({self.path})")
                if self._reader is None:
                    self._reader = await _connect(
                        self.path, ("query_only=ON", f"busy_timeout={self.busy_ms}")
                    )
                    self._reader.row_factory = aiosqlite.Row
                async with self._reader.execute(sql, tuple(params)) as cur:
                    return list(await cur.fetchall())
        except sqlite3.Error as exc:
            raise StorageError(f"read failed ({self.path}): {exc}") from exc

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock, self.conn.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._lock, self.conn.execute(sql, tuple(params)) as cur:
            return await cur.fetchone()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A single statement in its own transaction."""
        async with self.transaction() as conn:
            await conn.execute(sql, tuple(params))


async def _connect(
    target: str | Path, pragmas: Iterable[str], *, uri: bool = False
) -> aiosqlite.Connection:
    """An aiosqlite connection with its PRAGMAs, never half-made.

    aiosqlite runs each connection on its own thread, which is not a daemon: a connection lost
    to a cancellation while it opens (a shutdown, a second Ctrl-C) would keep the process alive
    for ever. So the opening runs to its end (``finish``); if we were cancelled meanwhile, the
    new connection is closed before the cancellation goes on, and on an error it is closed too."""
    made: list[aiosqlite.Connection] = []

    async def open_it() -> None:
        conn = await aiosqlite.connect(target, isolation_level=None, uri=uri)
        made.append(conn)
        for pragma in pragmas:
            await conn.execute(f"PRAGMA {pragma}")

    try:
        await finish(open_it())
    except BaseException:
        for conn in made:
            await finish(conn.close())
        raise
    return made[0]
