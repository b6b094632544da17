"""Media retention: received voice notes and photos are personal data; keep them only as long
as configured (the inbox row keeps the message and its outcome)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0


def sweep(media_dir: Path, retention_days: int, now: float | None = None) -> int:
    """Delete media files older than the retention; returns how many were removed."""
    if not media_dir.exists():
        return 0
    cutoff = (now if now is not None else time.time()) - retention_days * 86400
    removed = 0
    for path in media_dir.rglob("*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError as exc:
            log.warning("media retention: cannot remove %s: %s", path, exc)
    for folder in sorted((p for p in media_dir.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty
    if removed:
        log.info("media retention: removed %d file(s) older than %d days", removed, retention_days)
    return removed


async def run_retention(media_dir: Path, retention_days: int) -> None:
    while True:
        await asyncio.to_thread(sweep, media_dir, retention_days)
        await asyncio.sleep(SWEEP_EVERY_S)
