"""The offline basemap: tiles from a PMTiles archive (read with the ``pmtiles`` package) or an
MBTiles file (SQLite; rows are TMS, so y is flipped). Reads are blocking file I/O: callers run
:meth:`TileArchive.tile` in a thread."""

from __future__ import annotations

import gzip
import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

from bot.errors import PermanentError

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "pbf": "application/x-protobuf",
}
_PMTILES_FORMATS = {
    TileType.PNG: "png",
    TileType.JPEG: "jpg",
    TileType.WEBP: "webp",
    TileType.AVIF: "avif",
    TileType.MVT: "pbf",
}


class TilesUnusable(PermanentError):
    """``[board] tiles`` names a file that is missing or not a tile archive."""


@dataclass
class TileArchive:
    path: Path
    format: str  # png | jpg | webp | avif | pbf
    minzoom: int
    maxzoom: int
    bounds: list[float]  # west, south, east, north
    kind: str  # "pmtiles" | "mbtiles"
    gzipped: bool = False  # vector tiles stored gzipped (sent with Content-Encoding)
    _reader: Any = None
    _file: Any = None
    _local: threading.local = field(default_factory=threading.local)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.format, "application/octet-stream")

    def info(self) -> dict[str, Any]:
        return {
            "url": "/tiles/{z}/{x}/{y}",
            "format": self.format,
            "minzoom": self.minzoom,
            "maxzoom": self.maxzoom,
            "bounds": self.bounds,
        }

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        if not (self.minzoom <= z <= self.maxzoom and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        if self.kind == "pmtiles":
            data: bytes | None = self._reader.get(z, x, y)
            return data
        row = (
            self._db()
            .execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                (z, x, (2**z - 1) - y),
            )
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    def _db(self) -> sqlite3.Connection:
        # One read-only connection per worker thread (sqlite3 connections stay in their thread).
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def open_archive(path: Path) -> TileArchive:
    if not path.is_file():
        raise TilesUnusable(f"[board] tiles: no file {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(7)
        if magic == b"PMTiles":
            return _open_pmtiles(path)
        return _open_mbtiles(path)
    except (OSError, sqlite3.Error, ValueError, KeyError) as exc:
        raise TilesUnusable(
            f"[board] tiles: {path} is not a PMTiles or MBTiles file: {exc}"
        ) from exc


def _open_pmtiles(path: Path) -> TileArchive:
    f = path.open("rb")
    try:
        reader = Reader(MmapSource(f))  # type: ignore[no-untyped-call]
        h = reader.header()  # type: ignore[no-untyped-call]
    except Exception:
        f.close()
        raise
    bounds = [
        h["min_lon_e7"] / 1e7,
        h["min_lat_e7"] / 1e7,
        h["max_lon_e7"] / 1e7,
        h["max_lat_e7"] / 1e7,
    ]
    return TileArchive(
        path,
        _PMTILES_FORMATS.get(h["tile_type"], "png"),
        int(h["min_zoom"]),
        int(h["max_zoom"]),
        bounds,
        "pmtiles",
        gzipped=h["tile_compression"] == Compression.GZIP,
        _reader=reader,
        _file=f,
    )


def _open_mbtiles(path: Path) -> TileArchive:
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        zooms = conn.execute("SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles").fetchone()
        sample = conn.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
    finally:
        conn.close()
    fmt = str(meta.get("format", "png")).lower()
    fmt = {"jpeg": "jpg", "mvt": "pbf"}.get(fmt, fmt)
    bounds = [float(v) for v in str(meta.get("bounds", "-180,-85.0511,180,85.0511")).split(",")]
    gzipped = bool(sample) and bytes(sample[0][:2]) == b"\x1f\x8b"
    return TileArchive(
        path,
        fmt,
        int(meta.get("minzoom", zooms[0] if zooms[0] is not None else 0)),
        int(meta.get("maxzoom", zooms[1] if zooms[1] is not None else 0)),
        bounds,
        "mbtiles",
        gzipped=gzipped and fmt == "pbf",
    )


def ungzip_if_needed(data: bytes, archive: TileArchive) -> bytes:
    """Raster tiles are never gzipped on the wire; vector tiles keep their gzip (the response
    says Content-Encoding: gzip)."""
    if data[:2] == b"\x1f\x8b" and archive.format != "pbf":
        return gzip.decompress(data)
    return data
