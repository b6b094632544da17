"""The protocol index: SQLite FTS5 (keywords + metadata) and chromadb (dense vectors).

- ``<index_path>/fts.db``: table ``chunks`` (metadata + text) and FTS5 table ``chunks_fts``
  with ``unicode61 categories 'L* N* Co M*'`` so Bengali/Hindi vowel signs stay inside words
  (queries are built by protocols/fts.py).
- ``<index_path>/chroma``: the vectors, one collection per embedder and dimension
  (protocols/vectors.py).

All blocking calls run on worker threads (``asyncio.to_thread``) behind one lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from protocols.documents import Chunk
from protocols.embedders import Embedder
from protocols.fts import FTS_TOKENIZER, build_fts_query
from protocols.vectors import VectorStore, batches

log = logging.getLogger(__name__)

T = TypeVar("T")

_COLS = (
    "id",
    "doc_key",
    "path",
    "ord",
    "title",
    "topic",
    "lang",
    "source",
    "version",
    "sms",
    "text",
)
_SELECT = ", ".join(_COLS)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc_key TEXT NOT NULL,
    path TEXT NOT NULL DEFAULT '',
    ord INTEGER NOT NULL DEFAULT 0,
    title TEXT NOT NULL DEFAULT '',
    topic TEXT NOT NULL DEFAULT '',
    lang TEXT NOT NULL DEFAULT 'en',
    source TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    sms TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_key);
CREATE INDEX IF NOT EXISTS chunks_lang_topic ON chunks(lang, topic);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, tokenize = "{FTS_TOKENIZER}"
);
"""


class ProtocolIndexError(Exception):
    """The index could not be opened or used."""


# A chunk as read back from the index: the same fields as the one ingested.
StoredChunk = Chunk


def _chunk(row: Sequence[Any]) -> Chunk:
    """A row of ``SELECT {_SELECT}`` as a Chunk."""
    return Chunk(**dict(zip(_COLS, row, strict=True)))


@dataclass(frozen=True)
class IndexStats:
    chunks: int
    vectors: int
    documents: int
    by_lang: dict[str, int]
    topics: int
    collection: str | None
    bytes_on_disk: int


@dataclass(frozen=True)
class Missing:
    """Chunk ids absent from the keyword table and/or the vector collection."""

    fts: set[str]
    vectors: set[str]

    @property
    def either(self) -> set[str]:
        return self.fts | self.vectors


def _dir_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class ProtocolIndex:
    """FTS5 + chromadb over protocol chunks. ``embedder=None`` → keyword-only index."""

    def __init__(self, index_path: Path, embedder: Embedder | None) -> None:
        self.index_path = Path(index_path)
        self.embedder = embedder
        self._db: sqlite3.Connection | None = None
        self._vectors: VectorStore | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def has_vectors(self) -> bool:
        return self._vectors is not None

    @property
    def collection_name(self) -> str | None:
        return self._vectors.name if self._vectors is not None else None

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.embedder is not None and self.embedder.dim <= 0:
            # Unknown output size (an unlisted Ollama model): ask once.
            await self.embedder.embed_queries(["dimension probe"])
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        self.index_path.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.index_path / "fts.db", check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.commit()
        except sqlite3.Error as exc:
            db.close()
            raise ProtocolIndexError(f"cannot open {self.index_path / 'fts.db'}: {exc}") from exc
        self._db = db
        if self.embedder is not None:
            self._vectors = VectorStore(self.index_path / "chroma", self.embedder)
        log.info("protocol index open at %s (vectors: %s)", self.index_path, self.collection_name)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    def _close_sync(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._vectors = None  # chromadb's PersistentClient has no public close

    async def __aenter__(self) -> ProtocolIndex:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await asyncio.to_thread(locked)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ProtocolIndexError("protocol index is not open")
        return self._db

    # -- writes ----------------------------------------------------------------------------

    async def missing(self, ids: Sequence[str]) -> Missing:
        """Which of ``ids`` are absent from FTS and (if vectors are on) from chromadb."""
        id_list = list(dict.fromkeys(ids))

        def work() -> Missing:
            present = self._present_fts(id_list)
            in_vec = self._vectors.present(id_list) if self._vectors is not None else None
            return Missing(
                fts={i for i in id_list if i not in present},
                vectors=set() if in_vec is None else {i for i in id_list if i not in in_vec},
            )

        return await self._run(work)

    def _present_fts(self, ids: list[str]) -> set[str]:
        db = self._conn()
        present: set[str] = set()
        for part in batches(ids, 500):
            marks = ",".join("?" * len(part))
            rows = db.execute(f"SELECT id FROM chunks WHERE id IN ({marks})", part)  # noqa: S608
            present.update(r[0] for r in rows)
        return present

    async def upsert(
        self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]] | None = None
    ) -> int:
        """Add chunks not yet stored; ``embeddings`` (aligned with ``chunks``) go to chromadb
        for chunks missing there. Returns how many chunks were new to either store."""
        if embeddings is not None and len(embeddings) != len(chunks):
            raise ValueError("embeddings must align with chunks")
        items = list(chunks)
        vecs = list(embeddings) if embeddings is not None else None
        insert = f"INSERT INTO chunks ({_SELECT}) VALUES ({','.join('?' * len(_COLS))})"  # noqa: S608

        def work() -> int:
            present = self._present_fts([c.id for c in items])
            db = self._conn()
            new_ids: set[str] = set()
            with db:
                for c in items:
                    if c.id in present or c.id in new_ids:
                        continue
                    cur = db.execute(insert, [getattr(c, col) for col in _COLS])
                    db.execute(
                        "INSERT INTO chunks_fts (rowid, title, text) VALUES (?,?,?)",
                        (cur.lastrowid, c.title, c.text),
                    )
                    new_ids.add(c.id)
            if self._vectors is not None and vecs is not None:
                new_ids |= self._vectors.add(items, vecs)
            return len(new_ids)

        return await self._run(work)

    async def delete_ids(self, ids: Iterable[str]) -> int:
        id_list = list(dict.fromkeys(ids))
        if not id_list:
            return 0

        def work() -> int:
            db = self._conn()
            removed = 0
            with db:
                for part in batches(id_list, 500):
                    marks = ",".join("?" * len(part))
                    rowids = [
                        r[0]
                        for r in db.execute(
                            f"SELECT rowid FROM chunks WHERE id IN ({marks})",  # noqa: S608
                            part,
                        )
                    ]
                    db.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(r,) for r in rowids])
                    removed += db.execute(
                        f"DELETE FROM chunks WHERE id IN ({marks})",  # noqa: S608
                        part,
                    ).rowcount
            if self._vectors is not None:
                self._vectors.delete(id_list)
            return removed

        return await self._run(work)

    async def get_meta(self, key: str) -> str | None:
        def work() -> str | None:
            row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def set_meta(self, key: str, value: str) -> None:
        def work() -> None:
            db = self._conn()
            with db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

        await self._run(work)

    async def doc_chunk_ids(self, doc_key: str) -> set[str]:
        def work() -> set[str]:
            rows = self._conn().execute("SELECT id FROM chunks WHERE doc_key = ?", (doc_key,))
            return {r[0] for r in rows}

        return await self._run(work)

    async def delete_document(self, doc_key: str) -> int:
        """Remove every chunk of a document (e.g. its file was deleted from the library)."""
        return await self.delete_ids(await self.doc_chunk_ids(doc_key))

    async def documents(self) -> dict[str, str]:
        """doc_key → source file path of every stored document."""

        def work() -> dict[str, str]:
            rows = self._conn().execute("SELECT doc_key, MIN(path) FROM chunks GROUP BY doc_key")
            return {r[0]: r[1] for r in rows}

        return await self._run(work)

    # -- reads -----------------------------------------------------------------------------

    async def count(self) -> int:
        def work() -> int:
            return int(self._conn().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

        return await self._run(work)

    async def stats(self) -> IndexStats:
        def work() -> IndexStats:
            db = self._conn()
            chunks = int(db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
            docs = int(db.execute("SELECT COUNT(DISTINCT doc_key) FROM chunks").fetchone()[0])
            topics = int(db.execute("SELECT COUNT(DISTINCT topic) FROM chunks").fetchone()[0])
            by_lang = {
                r[0]: int(r[1])
                for r in db.execute("SELECT lang, COUNT(*) FROM chunks GROUP BY lang ORDER BY 1")
            }
            vectors = self._vectors.count() if self._vectors is not None else 0
            return IndexStats(
                chunks=chunks,
                vectors=vectors,
                documents=docs,
                by_lang=by_lang,
                topics=topics,
                collection=self.collection_name,
                bytes_on_disk=_dir_size(self.index_path),
            )

        return await self._run(work)

    async def keyword_search(
        self, query: str, langs: Sequence[str] | None = None, limit: int = 30
    ) -> list[tuple[StoredChunk, float]]:
        """BM25 over title + text (title weighted 2x). Higher score = better. Never raises on
        user text: the MATCH expression is built from quoted tokens only."""
        expr = build_fts_query(query)
        if expr is None:
            return []
        cols = ", ".join(f"c.{c}" for c in _COLS)
        sql = (
            f"SELECT {cols}, bm25(chunks_fts, 2.0, 1.0) AS rank "  # noqa: S608
            "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ?"
        )
        params: list[Any] = [expr]
        if langs:
            sql += f" AND c.lang IN ({','.join('?' * len(langs))})"
            params.extend(langs)
        sql += " ORDER BY rank LIMIT ?"
        params.append(limit)

        def work() -> list[tuple[StoredChunk, float]]:
            try:
                rows = self._conn().execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:  # defensive: should be unreachable
                log.warning("FTS query failed (%s) for expression %r", exc, expr)
                return []
            return [(_chunk(r[:-1]), -float(r[-1])) for r in rows]

        return await self._run(work)

    async def dense_search(
        self, embedding: Sequence[float], langs: Sequence[str] | None = None, limit: int = 30
    ) -> list[tuple[StoredChunk, float]]:
        """Nearest chunks by cosine similarity (higher = better); [] without vectors."""
        vectors = self._vectors
        if vectors is None:
            return []
        vec = [float(x) for x in embedding]

        def work() -> list[tuple[StoredChunk, float]]:
            pairs = vectors.nearest(vec, langs, limit)
            by_id = self._rows_by_id([i for i, _ in pairs])
            return [(by_id[i], 1.0 - d) for i, d in pairs if i in by_id]

        return await self._run(work)

    def _rows_by_id(self, ids: list[str]) -> dict[str, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn().execute(
            f"SELECT {_SELECT} FROM chunks WHERE id IN ({marks})",  # noqa: S608
            ids,
        )
        return {r[0]: _chunk(r) for r in rows}

    async def get_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        id_list = list(ids)
        return await self._run(lambda: self._rows_by_id(id_list))

    async def first_chunk(self, lang: str, topic: str) -> StoredChunk | None:
        """The opening chunk of the document on ``topic`` in ``lang`` (for its ``sms``)."""

        def work() -> StoredChunk | None:
            row = (
                self._conn()
                .execute(
                    f"SELECT {_SELECT} FROM chunks WHERE lang = ? AND topic = ? "  # noqa: S608
                    "ORDER BY (sms = '') ASC, ord ASC LIMIT 1",
                    (lang, topic),
                )
                .fetchone()
            )
            return _chunk(row) if row else None

        return await self._run(work)
