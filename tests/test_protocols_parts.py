"""Small pure pieces of protocols/: id batching, the fields a chunk carries from its document,
and a passage quoting a chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import PermanentError
from protocols.documents import (
    Chunk,
    DocInfo,
    Document,
    DocumentError,
    chunk_document,
    load_document,
)
from protocols.search import _passage
from protocols.vectors import batches


def test_batches() -> None:
    assert [list(b) for b in batches(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches([], 3)) == []


def _doc() -> Document:
    return Document(
        path=Path("/lib/en/boil.md"),
        key="en/boil-water",
        title="Boil water",
        topic="boil-water",
        lang="en",
        source="WHO",
        version="2",
        sms="Boil water 1 minute.",
        body="Boil all drinking water.\n\nLet it cool covered.",
    )


def test_chunks_carry_their_documents_info() -> None:
    doc = _doc()
    assert doc.info() == {
        "title": "Boil water",
        "topic": "boil-water",
        "lang": "en",
        "source": "WHO",
        "version": "2",
        "sms": "Boil water 1 minute.",
    }
    chunks = chunk_document(doc)
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    assert chunks[0].text == "Boil water: Boil water 1 minute."  # the summary chunk
    for c in chunks:
        assert isinstance(c, DocInfo) and c.info() == doc.info()
        assert (c.doc_key, c.path) == ("en/boil-water", "/lib/en/boil.md")


def test_passage_quotes_its_chunk() -> None:
    chunk = Chunk(id="c1", doc_key="en/x", ord=3, text="Stay high.", path="/p", **_doc().info())
    p = _passage(chunk, 0.75)
    assert (p.id, p.doc_key, p.title, p.topic, p.lang, p.source, p.text, p.score, p.sms) == (
        "c1",
        "en/x",
        "Boil water",
        "boil-water",
        "en",
        "WHO",
        "Stay high.",
        0.75,
        "Boil water 1 minute.",
    )


def test_document_error_is_permanent(tmp_path: Path) -> None:
    bad = tmp_path / "x.docx"
    bad.write_text("not a protocol")
    with pytest.raises(DocumentError) as info:
        load_document(bad)
    assert isinstance(info.value, PermanentError) and not info.value.transient
    assert str(info.value) == info.value.reason == "unsupported file type '.docx'"
