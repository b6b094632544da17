"""What every store module shares: one row→dataclass mapper (instead of one per dataclass),
``IN`` placeholders, one-row and all-rows reads, and the allow-listed ``UPDATE``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiosqlite

from bot.store.db import Database

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class RowLike(Protocol):
    """An ``aiosqlite.Row`` (``sqlite3.Row``) or a plain dict: read by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


def build(
    cls: type[T],
    row: RowLike,
    *,
    columns: Mapping[str, str] | None = None,
    **convert: Callable[[Any], Any],
) -> T:
    """``cls`` from ``row``: each field from the column of its name (``columns`` renames, e.g.
    ``{"case": "case_code"}``), passed through ``convert[field]`` where one is given. Columns
    the dataclass has no field for are ignored."""
    renames = columns or {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = row[renames.get(f.name, f.name)]
        fn = convert.get(f.name)
        values[f.name] = value if fn is None else fn(value)
    return cls(**values)


def placeholders(values: Iterable[Any]) -> str:
    """``(?,?,?)`` for an ``IN`` clause over ``values`` (never the values themselves in SQL)."""
    return "(" + ",".join("?" for _ in values) + ")"


async def one(
    conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> aiosqlite.Row | None:
    """The first row of ``sql`` inside a transaction (None if there is none)."""
    cur = await conn.execute(sql, tuple(params))
    return await cur.fetchone()


async def every(
    db: Database | aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> list[aiosqlite.Row]:
    """All rows of ``sql``, from the database or inside a caller's transaction."""
    if isinstance(db, Database):
        return await db.fetchall(sql, params)
    cur = await db.execute(sql, tuple(params))
    return list(await cur.fetchall())


async def update_fields(
    conn: aiosqlite.Connection,
    table: str,
    row_id: int | str,
    now: float,
    fields: Mapping[str, Any],
    allowed: frozenset[str],
) -> None:
    """``UPDATE table SET <fields>, updated_at`` for the columns in ``allowed`` only (``table``
    and the allow-list are fixed identifiers; values are parameters)."""
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f"not updatable: {sorted(bad)}")
    if not fields:
        return
    cols = ", ".join(f"{k}=?" for k in fields)
    values = [int(v) if isinstance(v, IntEnum) else v for v in fields.values()]
    await conn.execute(
        f"UPDATE {table} SET {cols}, updated_at=? WHERE id=?",  # noqa: S608 - keys allow-listed
        (*values, now, row_id),
    )
