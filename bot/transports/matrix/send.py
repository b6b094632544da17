"""Outbound: message content from an Outbound, image upload, and the idempotent room send
(``tx_id`` = the outbox idem_key, so a retried send is one event on the homeserver). Every
failure is raised as a MatrixSendError of its kind."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    KeysQueryError,
    LocalProtocolError,
    RoomSendResponse,
    SendRetryError,
    UploadResponse,
)

from bot import redact
from bot.models import Outbound
from bot.textclean import clean_text
from bot.transports.matrix.errors import (
    MatrixSendError,
    MatrixSendPermanent,
    MatrixSendTransient,
    classify_send_error,
)
from bot.transports.matrix.mapping import safe_filename
from bot.transports.matrix.session import REQUEST_TIMEOUT_S

log = logging.getLogger(__name__)


def message_content(out: Outbound) -> dict[str, Any]:
    """The m.room.message content for an Outbound (``msgtype``, HTML, reply from its meta)."""
    # Every post may quote what the public typed: no escape sequences or bidi overrides
    # reach a reader's screen (the outbox keeps the text as it was).
    content: dict[str, Any] = {
        "msgtype": str(out.meta.get("msgtype", "m.notice")),
        "body": clean_text(out.text),
    }
    formatted = out.meta.get("formatted_body")
    if isinstance(formatted, str) and formatted:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = clean_text(formatted)
    extra = out.meta.get("extra_content")  # namespaced fields, e.g. a regional event's
    if isinstance(extra, dict):
        content.update({k: v for k, v in extra.items() if "." in k and k not in content})
    reply_to = out.meta.get("in_reply_to")
    if isinstance(reply_to, str) and reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    log.debug("matrix: send %s to %s: %s", out.idem_key, out.conversation, redact.body(out.text))
    return content


async def room_send(client: AsyncClient, room_id: str, content: dict[str, Any], tx_id: str) -> str:
    """Send one m.room.message; returns its event id."""
    try:
        if client.olm is not None and client.should_query_keys:
            q = await asyncio.wait_for(client.keys_query(), REQUEST_TIMEOUT_S)
            if isinstance(q, KeysQueryError):
                raise classify_send_error(q)
        resp = await asyncio.wait_for(
            client.room_send(
                room_id,
                "m.room.message",
                content,
                tx_id=tx_id,
                ignore_unverified_devices=True,
            ),
            REQUEST_TIMEOUT_S * 2,
        )
    except MatrixSendError:
        raise
    except asyncio.CancelledError:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise MatrixSendTransient(f"network: {exc!r}") from exc
    except (LocalProtocolError, SendRetryError) as exc:
        # e.g. room not synced yet (encrypted send needs its member list): retry later
        raise MatrixSendTransient(f"local: {exc}") from exc
    if isinstance(resp, RoomSendResponse):
        log.info("matrix: sent %s → %s as %s", tx_id, room_id, resp.event_id)
        return str(resp.event_id)
    err = classify_send_error(resp)
    log.warning(
        "matrix: send %s to %s failed (%s): %s",
        tx_id,
        room_id,
        "transient" if err.transient else "permanent",
        err.reason,
    )
    raise err


def image_type(data: bytes) -> tuple[str, str]:
    """(mimetype, file extension) of a PNG or JPEG; anything else cannot be sent."""
    if data.startswith(b"\x89PNG"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg", "jpg"
    raise MatrixSendPermanent("send_image: not a PNG or JPEG")


async def image_content(
    client: AsyncClient, room_id: str, data: bytes, body: str, *, tx_id: str
) -> dict[str, Any]:
    """Upload a PNG/JPEG (encrypted in an encrypted room) and return the m.image content."""
    mimetype, ext = image_type(data)
    info: dict[str, Any] = {"mimetype": mimetype, "size": len(data)}
    dims = await asyncio.to_thread(_image_size, data)
    if dims is not None:
        info["w"], info["h"] = dims
    room = client.rooms.get(room_id)
    encrypt = bool(room is not None and room.encrypted and client.olm is not None)
    filename = f"{safe_filename(tx_id)}.{ext}"
    try:
        up, keys = await asyncio.wait_for(
            client.upload(
                lambda _a, _b: data,
                content_type=mimetype,
                filename=filename,
                encrypt=encrypt,
                filesize=len(data),
            ),
            REQUEST_TIMEOUT_S * 2,
        )
    except asyncio.CancelledError:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise MatrixSendTransient(f"upload network: {exc!r}") from exc
    if not isinstance(up, UploadResponse):
        raise classify_send_error(up)
    content: dict[str, Any] = {
        "msgtype": "m.image",
        "body": body,
        "filename": filename,
        "info": info,
    }
    if encrypt and keys is not None:
        content["file"] = {**keys, "url": up.content_uri}
    else:
        content["url"] = up.content_uri
    return content


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            return int(w), int(h)
    except Exception:  # noqa: BLE001 - dimensions are optional metadata
        return None
