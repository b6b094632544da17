"""The board's map, chart and media endpoints on a real gateway: tiles from a small MBTiles and
PMTiles archive written here, the sitrep PNG, stored media (and nothing outside the media
directory)."""

from __future__ import annotations

import gc
import io
import json
import sqlite3
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from bot.models import Attachment, Channel, Inbound, Priority, Role
from bot.store import inbox
from tests.harness.board_client import board_gateway, http, logged_in
from tests.harness.matrix_room import Room
from tests.harness.ollama_standin import OllamaStandIn

BOUNDS = [90.2, 23.6, 90.6, 24.0]  # west, south, east, north


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


# XYZ address -> tile: a distinct image per tile, so a wrong (unflipped) row is caught.
TILES = {(0, 0, 0): png("red"), (1, 1, 0): png("green"), (1, 1, 1): png("blue")}


def write_mbtiles(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE metadata (name TEXT, value TEXT);"
        "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, "
        "tile_data BLOB);"
    )
    meta = {"name": "district", "format": "png", "minzoom": "0", "maxzoom": "1"}
    meta["bounds"] = ",".join(str(b) for b in BOUNDS)
    conn.executemany("INSERT INTO metadata VALUES (?, ?)", list(meta.items()))
    for (z, x, y), data in TILES.items():  # MBTiles rows are TMS: y counted from the south
        conn.execute("INSERT INTO tiles VALUES (?,?,?,?)", (z, x, (2**z - 1) - y, data))
    conn.commit()
    conn.close()


def write_pmtiles(path: Path) -> None:
    with path.open("wb") as f:
        w = Writer(f)
        for (z, x, y), data in sorted(TILES.items(), key=lambda t: zxy_to_tileid(*t[0])):
            w.write_tile(zxy_to_tileid(z, x, y), data)
        header: dict[str, Any] = {
            "tile_type": TileType.PNG,
            "tile_compression": Compression.NONE,
            "min_lon_e7": int(BOUNDS[0] * 1e7),
            "min_lat_e7": int(BOUNDS[1] * 1e7),
            "max_lon_e7": int(BOUNDS[2] * 1e7),
            "max_lat_e7": int(BOUNDS[3] * 1e7),
            "center_zoom": 0,
            "center_lon_e7": int(90.4 * 1e7),
            "center_lat_e7": int(23.8 * 1e7),
        }
        w.finalize(header, {"name": "district"})


async def _check_tiles(base: str, room: Room) -> None:
    async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
        status, info = await coord.get("/api/map")
        assert status == 200
        tiles = info["tiles"]
        assert tiles["url"] == "/tiles/{z}/{x}/{y}" and tiles["format"] == "png"
        assert (tiles["minzoom"], tiles["maxzoom"]) == (0, 1)
        assert [round(b, 3) for b in tiles["bounds"]] == BOUNDS
        assert info["outline"]["type"] == "FeatureCollection"
        for (z, x, y), data in TILES.items():
            async with coord.client.get(f"{base}/tiles/{z}/{x}/{y}") as r:
                assert r.status == 200 and r.content_type == "image/png", (z, x, y)
                assert await r.read() == data, (z, x, y)
        for missing in ("/tiles/1/0/0", "/tiles/5/0/0", "/tiles/1/7/0"):
            async with coord.client.get(base + missing) as r:
                assert r.status == 404, missing
    async with logged_in(base, room.responder.user_id, room.responder.password) as resp:
        await resp.client.post(f"{base}/logout", data={"csrf": resp.csrf})
        async with resp.client.get(f"{base}/tiles/0/0/0") as r:
            assert r.status == 401  # tiles are staff-only like everything but the login page


def outline(tmp_path: Path) -> str:
    path = tmp_path / "district.geojson"
    ring = [[90.2, 23.6], [90.6, 23.6], [90.6, 24.0], [90.2, 24.0], [90.2, 23.6]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return str(path)


@pytest.mark.parametrize(
    ("name", "write"),
    [("district.mbtiles", write_mbtiles), ("district.pmtiles", write_pmtiles)],
    ids=["mbtiles-rows-flipped", "pmtiles"],
)
async def test_tiles_from_an_offline_archive(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
    name: str,
    write: Callable[[Path], None],
) -> None:
    archive = tmp_path / name
    write(archive)
    extra = {"tiles": str(archive), "outline": outline(tmp_path)}
    async with board_gateway(tmp_path, ollama_standin, coordination, **extra) as (_, base):
        await _check_tiles(base, coordination)


async def test_no_basemap_grid_map_sitrep_chart_and_stored_media(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        photo = gw.settings.media.dir / "photo-1.jpg"
        photo.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), "white").save(photo, "JPEG")
        secret = tmp_path / "lifeline.db"  # exists, but outside the media directory
        atts = (
            Attachment("image", "image/jpeg", str(photo), photo.stat().st_size),
            Attachment("file", "image/jpeg", str(secret), 1),
            Attachment("image", "image/svg+xml", str(photo), 1),
        )
        msg = Inbound(Channel.SMS, "+8801700000001", "+8801700000001", "", "k1", time.time(), atts)
        async with gw.db.transaction() as conn:
            row_id = await inbox.insert(
                conn,
                msg,
                role=Role.PUBLIC,
                order_key="sms:+8801700000001",
                needs_model=False,
                lang="en",
                priority=Priority.LOW,
                status="done",
                now=time.time(),
            )
        async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
            status, info = await coord.get("/api/map")
            assert status == 200 and info["tiles"] is None and info["outline"] is None
            assert len(info["center"]) == 2 and isinstance(info["zoom"], int)
            async with coord.client.get(f"{base}/tiles/0/0/0") as r:
                assert r.status == 404

            async with coord.client.get(f"{base}/api/sitrep.png") as r:
                assert r.status == 200 and r.content_type == "image/png"
                assert (await r.read()).startswith(b"\x89PNG\r\n\x1a\n")

            async with coord.client.get(f"{base}/media/{row_id}-0") as r:
                assert r.status == 200 and r.content_type == "image/jpeg"
                assert r.headers["Content-Disposition"] == "inline"
                assert await r.read() == photo.read_bytes()
            async with coord.client.get(f"{base}/media/{row_id}-1") as r:
                assert r.status == 404  # outside [media] dir: never served
            async with coord.client.get(f"{base}/media/{row_id}-2") as r:
                assert r.content_type == "application/octet-stream"  # never an SVG inline
            for bad in (f"{row_id}-3", "../lifeline.db", "1-x"):
                async with coord.client.get(f"{base}/media/{bad}") as r:
                    assert r.status == 404, bad

            status, teams = await coord.get("/api/teams")
            assert status == 200
            assert [(t["id"], t["kind"], t["status"]) for t in teams["teams"]] == [
                ("boat-1", "boat", "free"),
                ("boat-2", "boat", "free"),
                ("med-1", "medical", "free"),
            ]


async def test_a_stopped_board_lets_the_stopped_gateway_go(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    """aiohttp caches every app it served in a process-wide cache: a stopped board must not
    keep the stopped gateway (and its modem threads) alive through it."""

    async def serve_one_request() -> weakref.ref[Any]:
        async with board_gateway(tmp_path, ollama_standin, coordination) as (gw, base):
            async with http() as client, client.get(base + "/login") as r:
                assert r.status == 200
            return weakref.ref(gw.app)

    app = await serve_one_request()
    gc.collect()
    assert app() is None, [type(r).__name__ for r in gc.get_referrers(app())]
