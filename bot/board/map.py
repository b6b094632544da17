"""What the map needs (GET /api/map, GET /tiles/z/x/y): the basemap archive if one is configured,
the district outline if one is, and where to open. Without either the page draws a plain grid."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.board.tiles import TileArchive, TilesUnusable, open_archive, ungzip_if_needed
from config.board import BoardSettings

log = logging.getLogger(__name__)

OUTLINE_MAX_BYTES = 5 * 1024 * 1024


class MapData:
    def __init__(self, settings: BoardSettings) -> None:
        self.settings = settings
        self.archive: TileArchive | None = None
        self.outline: dict[str, Any] | None = None

    def load(self) -> None:
        """Blocking (file reads): run in a thread at start. A bad file is logged, not fatal:
        the board still works on the plain grid."""
        s = self.settings
        if s.tiles:
            try:
                self.archive = open_archive(Path(s.tiles).expanduser())
                a = self.archive
                log.info(
                    "board: basemap %s (%s %s, zoom %d-%d)",
                    a.path,
                    a.kind,
                    a.format,
                    a.minzoom,
                    a.maxzoom,
                )
            except TilesUnusable as exc:
                log.error("board: %s; the map shows a plain grid", exc.reason)
        if s.outline:
            self.outline = _read_outline(Path(s.outline).expanduser())

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {
            "tiles": None if self.archive is None else self.archive.info(),
            "outline": self.outline,
            "center": [s.center_lat, s.center_lon],
            "zoom": s.zoom,
        }

    async def tile_response(self, z: int, x: int, y: int) -> web.Response:
        archive = self.archive
        if archive is None:
            raise web.HTTPNotFound(text="no basemap configured")
        data = await asyncio.to_thread(archive.tile, z, x, y)
        if data is None:
            raise web.HTTPNotFound(text="no such tile")
        data = ungzip_if_needed(data, archive)
        headers = {"Cache-Control": "private, max-age=86400"}
        if data[:2] == b"\x1f\x8b":
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=data, content_type=archive.content_type, headers=headers)


def _read_outline(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > OUTLINE_MAX_BYTES:
            log.error("board: outline %s is over %d bytes; not used", path, OUTLINE_MAX_BYTES)
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.error("board: outline %s unreadable (%s); the map has no outline", path, exc)
        return None
    if not isinstance(data, dict) or "type" not in data:
        log.error("board: outline %s is not GeoJSON; the map has no outline", path)
        return None
    return data
