"""Attachment download: authenticated media, streamed up to the size cap, decrypted for E2EE rooms,
written atomically under the media directory. A failure never loses the message: the Inbound is
delivered without the attachment and with ``facts.media_error``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

from nio import AsyncClient
from nio.api import MATRIX_MEDIA_API_PATH
from nio.crypto.attachments import decrypt_attachment

from bot.aio import raise_if_cancelling
from bot.errors import TransientError
from bot.models import Attachment, Inbound
from bot.transports.matrix.mapping import Mapped, MediaRef

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 120.0


class _TooLarge(Exception):
    pass


def media_dir_for(media_root: Path, event_id: str) -> Path:
    return media_root / hashlib.sha256(event_id.encode()).hexdigest()


async def with_media(
    client: AsyncClient, mapped: Mapped, media_root: Path, max_bytes: int
) -> Inbound:
    """The mapped Inbound with its attachment downloaded, or with ``media_error`` set."""
    inbound, ref = mapped.inbound, mapped.media
    if ref is None:
        return inbound
    event_id = inbound.dedup_key
    dest = media_dir_for(media_root, event_id) / ref.name
    try:
        size = await download(client, ref, dest, max_bytes)
    except _TooLarge:
        log.warning(
            "matrix: %s %s exceeded cap %d while downloading", ref.kind, event_id, max_bytes
        )
        return replace(inbound, facts=replace(inbound.facts, media_error="too_large"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure → Inbound with media_error
        raise_if_cancelling()  # aiohttp/nio can turn our cancellation into a TimeoutError
        log.warning("matrix: %s %s download failed: %r", ref.kind, event_id, exc)
        return replace(inbound, facts=replace(inbound.facts, media_error="download_failed"))
    att = Attachment(
        kind=ref.kind,
        mimetype=ref.mimetype or "application/octet-stream",
        path=str(dest),
        size=size,
        name=ref.name,
    )
    return replace(inbound, attachments=(att,))


async def download(client: AsyncClient, ref: MediaRef, dest: Path, max_bytes: int) -> int:
    """Stream an authenticated-media download, stopping at the cap; returns bytes written."""
    parsed = urllib.parse.urlparse(ref.url)
    server = urllib.parse.quote(parsed.netloc, safe="")
    media_id = urllib.parse.quote(parsed.path.lstrip("/"), safe="")
    path = f"{MATRIX_MEDIA_API_PATH}/download/{server}/{media_id}?allow_remote=true"
    headers = {"Authorization": f"Bearer {client.access_token}"}
    buf = bytearray()
    async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
        http = await client.send("GET", path, headers=headers, timeout=DOWNLOAD_TIMEOUT_S)
        try:
            if http.status != 200:
                raise TransientError(f"download HTTP {http.status}")
            if http.content_length is not None and http.content_length > max_bytes:
                raise _TooLarge
            async for chunk in http.content.iter_chunked(64 * 1024):
                buf.extend(chunk)
                if len(buf) > max_bytes:
                    raise _TooLarge
        finally:
            http.release()
    data = bytes(buf)
    if ref.enc is not None:
        data = await asyncio.to_thread(_decrypt, data, ref.enc)

    def write() -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    await asyncio.to_thread(write)
    return len(data)


def _decrypt(data: bytes, enc: dict[str, Any]) -> bytes:
    key = enc.get("key", {}).get("k")
    sha = enc.get("hashes", {}).get("sha256")
    return bytes(decrypt_attachment(data, key, sha, enc.get("iv")))
