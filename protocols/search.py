"""Hybrid protocol search: FTS5 BM25 + dense vectors fused by reciprocal rank (k=60).

Results prefer the sender's language, fall back to English, keep at most two chunks per
document, and degrade to keyword-only when there is no embedder or it fails (logged once per
outage). ``degraded_reply`` answers without the chat model: the best document's ``sms:``
summary in the sender's language, or a built-in safety line.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from dataclasses import dataclass, fields
from typing import Literal

from chromadb.errors import ChromaError

from config.settings import ProtocolsSettings
from protocols.embedders import Embedder, EmbedderError, make_embedder
from protocols.index import ProtocolIndex, ProtocolIndexError, StoredChunk

log = logging.getLogger(__name__)

RRF_K = 60
CANDIDATES = 30
MAX_PER_DOC = 2
LANG_BOOST = 1.3  # fused score multiplier for chunks in the sender's language
TOPIC_WEIGHT = 0.5  # share of a topic's total evidence added to each of its chunks
TOPIC_SUPPORT = 3  # how many of a topic's chunks make up its evidence
DENSE_MATCH_MIN = 0.84  # cosine similarity that counts as "a match" without keyword hits

SearchMode = Literal["hybrid", "keyword", "dense"]

GENERIC_SAFETY = {
    "en": (
        "Stay safe: move to high ground, keep away from flood water and power lines, drink only "
        "boiled or treated water. If a life is in danger, reply with your location and how many "
        "people need help."
    ),
    "bn": (
        "নিরাপদ থাকুন: উঁচু জায়গায় যান, বন্যার পানি ও বিদ্যুতের তার থেকে দূরে থাকুন, শুধু ফোটানো "
        "বা বিশুদ্ধ পানি পান করুন। জীবনের ঝুঁকি থাকলে আপনার অবস্থান ও কতজনের সাহায্য দরকার লিখে পাঠান।"
    ),
    "hi": (
        "सुरक्षित रहें: ऊँची जगह पर जाएँ, बाढ़ के पानी और बिजली के तारों से दूर रहें, केवल उबला या "
        "साफ़ किया हुआ पानी पिएँ। जान का खतरा हो तो अपना स्थान और कितने लोगों को मदद चाहिए, लिखकर भेजें।"
    ),
    "ur": (
        "محفوظ رہیں: اونچی جگہ پر جائیں، سیلاب کے پانی اور بجلی کے تاروں سے دور رہیں، "
        "صرف ابلا ہوا یا صاف کیا ہوا پانی پئیں۔ جان کو خطرہ ہو تو اپنا مقام اور کتنے لوگوں "
        "کو مدد چاہیے، لکھ کر بھیجیں۔"
    ),
}


@dataclass(frozen=True)
class Passage:
    id: str
    doc_key: str
    title: str
    topic: str
    lang: str
    source: str
    text: str
    score: float
    sms: str


# Every Passage field but the score comes from the chunk it quotes.
_FROM_CHUNK = tuple(f.name for f in fields(Passage) if f.name != "score")


def _is_indic(ch: str) -> bool:
    cp = ord(ch)
    return 0x0900 <= cp <= 0x09FF or 0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F


def estimate_tokens(text: str) -> int:
    """Rough token count: Indic/Arabic-script chars at 3 per token, others at 4."""
    indic = sum(1 for ch in text if _is_indic(ch))
    return math.ceil(indic / 3 + (len(text) - indic) / 4)


def _passage(chunk: StoredChunk, score: float) -> Passage:
    return Passage(score=score, **{name: getattr(chunk, name) for name in _FROM_CHUNK})


@dataclass
class _Candidate:
    chunk: StoredChunk
    score: float = 0.0
    keyword_hit: bool = False
    similarity: float = -1.0


@dataclass
class SearchTiming:
    """Timings of the last search, for benchmarks (seconds)."""

    embed: float = 0.0
    keyword: float = 0.0
    dense: float = 0.0
    total: float = 0.0


class ProtocolSearch:
    def __init__(self, index: ProtocolIndex, embedder: Embedder | None, *, top_k: int = 4) -> None:
        self.index = index
        self.embedder = embedder
        self.top_k = top_k
        self._dense_down = False
        self.last_timing = SearchTiming()

    @staticmethod
    def _langs(lang: str) -> list[str]:
        return [lang] if lang == "en" else [lang, "en"]

    async def _query_vector(self, query: str) -> list[float] | None:
        if self.embedder is None or not self.index.has_vectors:
            return None
        try:
            vec = (await self.embedder.embed_queries([query]))[0]
        except (EmbedderError, OSError, RuntimeError, ValueError) as exc:  # → keyword-only
            if not self._dense_down:
                log.warning("dense retrieval unavailable, using keywords only: %r", exc)
            self._dense_down = True
            return None
        if self._dense_down:
            log.info("dense retrieval is back")
            self._dense_down = False
        return vec

    async def _candidates(
        self,
        query: str,
        lang: str,
        mode: SearchMode,
        query_vector: list[float] | None,
    ) -> list[_Candidate]:
        timing = SearchTiming()
        t_start = time.perf_counter()
        langs = self._langs(lang)
        cands: dict[str, _Candidate] = {}
        if mode in ("hybrid", "keyword"):
            t0 = time.perf_counter()
            hits = await self.index.keyword_search(query, langs, CANDIDATES)
            timing.keyword = time.perf_counter() - t0
            for rank, (chunk, _bm25) in enumerate(hits, start=1):
                c = cands.setdefault(chunk.id, _Candidate(chunk))
                c.score += 1.0 / (RRF_K + rank)
                c.keyword_hit = True
        if mode in ("hybrid", "dense"):
            vec = query_vector
            if vec is None:
                t0 = time.perf_counter()
                vec = await self._query_vector(query)
                timing.embed = time.perf_counter() - t0
            if vec is not None:
                t0 = time.perf_counter()
                try:
                    dense = await self.index.dense_search(vec, langs, CANDIDATES)
                except (ChromaError, OSError, RuntimeError, ValueError) as exc:  # keep keywords
                    if not self._dense_down:
                        log.warning("vector search failed, using keywords only: %r", exc)
                    self._dense_down = True
                    dense = []
                timing.dense = time.perf_counter() - t0
                for rank, (chunk, sim) in enumerate(dense, start=1):
                    c = cands.setdefault(chunk.id, _Candidate(chunk))
                    c.score += 1.0 / (RRF_K + rank)
                    c.similarity = sim
        # Topic evidence: chunks of the same topic (any language) support each other, so an
        # English hit lifts the sender-language document on the same topic. Only a topic's
        # best TOPIC_SUPPORT chunks count: a long document whose every chunk shares one common
        # word ("shock" in psychological first aid) must not outvote the document that matches
        # the whole question (electric shock from a fallen wire).
        per_topic: dict[str, list[float]] = {}
        for c in cands.values():
            per_topic.setdefault(c.chunk.topic, []).append(c.score)
        topic_total = {
            t: sum(sorted(scores, reverse=True)[:TOPIC_SUPPORT]) for t, scores in per_topic.items()
        }
        for c in cands.values():
            c.score += TOPIC_WEIGHT * (topic_total[c.chunk.topic] - c.score)
            if c.chunk.lang == lang and lang != "en":
                c.score *= LANG_BOOST
        ranked = sorted(cands.values(), key=lambda c: (-c.score, c.chunk.doc_key, c.chunk.ord))
        timing.total = time.perf_counter() - t_start
        self.last_timing = timing
        return ranked

    async def search(
        self,
        query: str,
        lang: str,
        k: int = 4,
        *,
        mode: SearchMode = "hybrid",
        query_vector: list[float] | None = None,
    ) -> list[Passage]:
        """Top ``k`` passages for ``query`` from a sender writing in ``lang``."""
        per_doc: dict[str, int] = {}
        out: list[Passage] = []
        for c in await self._candidates(query, lang, mode, query_vector):
            n = per_doc.get(c.chunk.doc_key, 0)
            if n >= MAX_PER_DOC:
                continue
            per_doc[c.chunk.doc_key] = n + 1
            out.append(_passage(c.chunk, c.score))
            if len(out) >= k:
                break
        return out

    async def prompt_context(
        self, query: str, lang: str, token_budget: int
    ) -> tuple[str, list[Passage]]:
        """A block of cited excerpts ([P1] (title, source) …) that fits ``token_budget``."""
        passages = await self.search(query, lang, k=self.top_k)
        header = (
            "Safety protocols from the local library. Base safety advice on these excerpts "
            "and cite them as [P1], [P2]:"
        )
        used = estimate_tokens(header) + 1
        if not passages or used >= token_budget:
            return "", []
        parts = [header]
        kept: list[Passage] = []
        for i, p in enumerate(passages, start=1):
            label = f"[P{i}] ({p.title}, {p.source or 'local library'})"
            block = f"{label}\n{p.text}"
            cost = estimate_tokens(block) + 1
            if used + cost > token_budget:
                room = token_budget - used - estimate_tokens(label) - 2
                text = _truncate_to_tokens(p.text, room)
                if text and room >= 40:
                    parts.append(f"{label}\n{text} …")
                    kept.append(p)
                break
            parts.append(block)
            kept.append(p)
            used += cost
        if not kept:
            return "", []
        return "\n\n".join(parts), kept

    async def degraded_reply(self, query: str, lang: str) -> tuple[str, Passage | None]:
        """An answer without the chat model: the best matching document's SMS summary in the
        sender's language (English if that topic has no document in it), else a generic line."""
        generic = GENERIC_SAFETY.get(lang, GENERIC_SAFETY["en"])
        try:
            ranked = await self._candidates(query, lang, "hybrid", None)
        except (ProtocolIndexError, OSError, sqlite3.Error):
            log.exception("protocol search failed; sending the generic safety line")
            return generic, None
        for c in ranked:
            if not (c.keyword_hit or c.similarity >= DENSE_MATCH_MIN):
                continue
            topic = c.chunk.topic
            for want in dict.fromkeys([lang, "en", c.chunk.lang]):
                first = await self.index.first_chunk(want, topic)
                if first is not None and first.sms:
                    return first.sms, _passage(first, c.score)
            if c.chunk.sms:
                return c.chunk.sms, _passage(c.chunk, c.score)
        return generic, None

    async def aclose(self) -> None:
        await self.index.close()
        closer = getattr(self.embedder, "aclose", None)
        if closer is not None:
            await closer()


def _truncate_to_tokens(text: str, tokens: int) -> str:
    """Cut ``text`` to about ``tokens`` at a word boundary."""
    if tokens <= 0:
        return ""
    if estimate_tokens(text) <= tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix within budget
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= tokens:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space > 0 else ""


async def open_protocols(
    settings: ProtocolsSettings, model_host: str, *, sync_library: bool = True
) -> ProtocolSearch:
    """Open the index for the configured embedder; with ``sync_library``, start from the
    prebuilt index when there is none yet, then ingest what changed in
    ``settings.library_path`` (nothing when the index's recorded library hash matches)."""
    from protocols import prebuilt

    embedder = make_embedder(settings, model_host)
    if sync_library:
        await asyncio.to_thread(prebuilt.seed_index, settings)
    index = ProtocolIndex(settings.index_path, embedder)
    await index.open()
    if sync_library and settings.library_path.exists():
        await prebuilt.sync_library(index, settings)
    return ProtocolSearch(index, embedder, top_k=settings.top_k)
