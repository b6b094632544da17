"""Ingest protocol files into the index, incrementally.

Unchanged chunks (same lang + topic + text → same id) are skipped and counted; edited text
produces new chunks and the document's stale chunks are removed; documents whose file is gone
from an ingested directory are deleted. A bad file (corrupt PDF, not UTF-8, empty) becomes a
report row with an error, never a crash. If the embedder fails, chunks still reach the keyword
index and their vectors are filled in by the next ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from protocols.documents import Chunk, DocumentError, chunk_document, iter_files, load_document
from protocols.embedders import EmbedderError
from protocols.index import ProtocolIndex

log = logging.getLogger(__name__)

EMBED_BATCH = 16


@dataclass
class FileReport:
    file: str
    lang: str = ""
    doc_key: str = ""
    chunks_new: int = 0
    chunks_skipped: int = 0
    chunks_removed: int = 0
    error: str = ""


@dataclass
class IngestReport:
    rows: list[FileReport] = field(default_factory=list)
    documents_deleted: list[str] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def files(self) -> int:
        return len(self.rows)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.rows if r.error)

    @property
    def chunks_new(self) -> int:
        return sum(r.chunks_new for r in self.rows)

    @property
    def chunks_skipped(self) -> int:
        return sum(r.chunks_skipped for r in self.rows)

    @property
    def chunks_removed(self) -> int:
        return sum(r.chunks_removed for r in self.rows)


class ChunkRateColumn(ProgressColumn):
    """Chunks per second over rich's recent window (embedding is the slow part)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("? chunks/s" if speed is None else f"{speed:.1f} chunks/s")


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]ingest[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        ChunkRateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _embed_text(chunk: Chunk) -> str:
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


async def _embed_and_store(
    index: ProtocolIndex,
    chunks: list[Chunk],
    need_vectors: set[str],
    progress: Progress | None,
    task: TaskID | None,
    report: IngestReport,
) -> str:
    """Store chunks; embed those lacking vectors in batches. Returns an error text or ''."""
    embedder = index.embedder
    if embedder is None or not index.has_vectors or not need_vectors:
        await index.upsert(chunks)
        if progress is not None and task is not None:
            progress.advance(task, len(chunks))
        return ""
    error = ""
    for start in range(0, len(chunks), EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        todo = [c for c in batch if c.id in need_vectors]
        if todo and not error:
            t0 = time.perf_counter()
            try:
                vecs = await embedder.embed_passages([_embed_text(c) for c in todo])
            except EmbedderError as exc:
                error = f"embedding failed (keyword-only for now): {exc}"
                log.warning("%s", error)
            else:
                report.embed_seconds += time.perf_counter() - t0
                await index.upsert(todo, vecs)
        await index.upsert(batch)  # FTS rows for the rest (no-op for stored ones)
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    return error


async def ingest(
    paths: list[Path],
    index: ProtocolIndex,
    *,
    progress: bool = True,
    prune: bool = True,
    console: Console | None = None,
) -> IngestReport:
    """Walk ``paths`` (files or directories), parse, chunk, embed new chunks, upsert.

    ``prune``: delete indexed documents whose source file lived under one of the given
    directories but is no longer there.
    """
    t_start = time.perf_counter()
    report = IngestReport()
    files = iter_files(paths)
    parsed: list[tuple[FileReport, list[Chunk]]] = []
    seen_keys: dict[str, str] = {}
    for f in files:
        row = FileReport(file=str(f))
        report.rows.append(row)
        try:
            doc = load_document(f)
        except DocumentError as exc:
            row.error = str(exc)
            log.warning("skipping %s: %s", f, exc)
            continue
        row.lang, row.doc_key = doc.lang, doc.key
        if doc.key in seen_keys:
            row.error = f"duplicate document key {doc.key} (also {seen_keys[doc.key]})"
            log.warning("skipping %s: %s", f, row.error)
            continue
        seen_keys[doc.key] = str(f)
        chunks = chunk_document(doc)
        if not chunks:
            row.error = "no chunks"
            continue
        parsed.append((row, chunks))

    total = sum(len(c) for _, c in parsed)
    bar: Progress | None = None
    task: TaskID | None = None
    if progress:
        bar = progress_bar(console or Console(stderr=True))
        bar.start()
        task = bar.add_task("chunks", total=total)
    try:
        for row, chunks in parsed:
            if bar is not None and task is not None:
                bar.update(task, description=escape(Path(row.file).name))
            missing = await index.missing([c.id for c in chunks])
            need = missing.either
            row.chunks_new = len(need)
            row.chunks_skipped = len(chunks) - len(need)
            err = await _embed_and_store(index, chunks, missing.vectors, bar, task, report)
            if err:
                row.error = err
            stale = await index.doc_chunk_ids(row.doc_key) - {c.id for c in chunks}
            if stale:
                row.chunks_removed = await index.delete_ids(stale)
    finally:
        if bar is not None:
            bar.stop()

    if prune:
        roots = [p.resolve() for p in paths if p.is_dir()]
        if roots:
            stored = {k: v for k, v in (await index.documents()).items() if k not in seen_keys}
            gone = await asyncio.to_thread(_gone_under, stored, roots)
            for key, path in gone.items():
                await index.delete_document(key)
                report.documents_deleted.append(key)
                log.info("removed document %s (file %s is gone)", key, path)
    report.seconds = time.perf_counter() - t_start
    log.info(
        "ingest: %d files, %d new chunks, %d skipped, %d removed, %d errors in %.1fs",
        report.files,
        report.chunks_new,
        report.chunks_skipped,
        report.chunks_removed,
        report.errors,
        report.seconds,
    )
    return report


def _gone_under(stored: dict[str, str], roots: list[Path]) -> dict[str, str]:
    """Documents whose file lived under one of ``roots`` and no longer exists."""
    return {
        key: path
        for key, path in stored.items()
        if any(Path(path).is_relative_to(r) for r in roots) and not Path(path).exists()
    }


def render_report(report: IngestReport) -> Table:
    table = Table(title=f"Protocol ingest ({report.seconds:.1f} s)")
    table.add_column("file")
    table.add_column("lang")
    table.add_column("new", justify="right")
    table.add_column("skipped", justify="right")
    table.add_column("removed", justify="right")
    table.add_column("error", style="red")
    for r in report.rows:
        table.add_row(  # file names and errors are text, never rich markup
            escape(Path(r.file).name if r.file else ""),
            escape(r.lang),
            str(r.chunks_new),
            str(r.chunks_skipped),
            str(r.chunks_removed),
            escape(r.error),
        )
    table.add_section()
    table.add_row(
        f"total: {report.files} files",
        "",
        str(report.chunks_new),
        str(report.chunks_skipped),
        str(report.chunks_removed),
        f"{report.errors} errors" if report.errors else "",
    )
    if report.documents_deleted:
        table.add_row(
            escape(f"deleted documents: {', '.join(report.documents_deleted)}"), "", "", "", "", ""
        )
    return table
