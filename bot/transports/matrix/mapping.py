"""Room events → Inbound, as pure functions: a nio event and the facts about its room in, an
Inbound (plus the attachment still to download) out. No client, no I/O, so every case is unit
tested without a homeserver (tests/test_matrix_mapping.py).

What routing decides on is written as typed ``Facts``; ``meta`` keeps the diagnostics (event and
room id, encryption, media name, the raw geo URI).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nio import MegolmEvent, RoomMessage

from bot import redact
from bot.addressing import reply_fallback_sender, strip_reply_fallback
from bot.models import Attachment, Channel, Facts, Inbound

log = logging.getLogger(__name__)

MEDIA_KINDS = {"m.image": "image", "m.audio": "audio", "m.video": "video", "m.file": "file"}
TEXT_TYPES = {"m.text", "m.notice", "m.emote"}
VOICE_KEYS = ("org.matrix.msc3245.voice", "org.matrix.msc3245.voice.v2")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class MediaRef:
    """An attachment still to download (bot/transports/matrix/media.py)."""

    kind: str  # "image" | "audio" | "video" | "file"
    url: str  # mxc://server/media-id
    enc: dict[str, Any] | None  # key, iv and hashes of an encrypted file (E2EE rooms)
    name: str  # safe local file name
    mimetype: str


@dataclass(frozen=True)
class Mapped:
    inbound: Inbound
    media: MediaRef | None = None  # set when the attachment must still be downloaded

    @property
    def undecryptable(self) -> bool:
        return self.inbound.facts.undecryptable


def is_message(event: Any) -> bool:
    """A message (plain or still encrypted): what becomes an Inbound."""
    return isinstance(event, RoomMessage | MegolmEvent)


def merge_backfill(older: Sequence[Any], events: Sequence[Any]) -> list[Any]:
    """Paged-back events (oldest first) before the sync's timeline, without the overlap."""
    seen = {getattr(e, "event_id", None) for e in events}
    return [e for e in older if getattr(e, "event_id", None) not in seen] + list(events)


def parse_geo_uri(uri: str) -> dict[str, float] | None:
    """geo:lat,lon[,alt][;u=acc][;…] → {"lat", "lon"[, "accuracy_m"]}; None if malformed."""
    if not uri.lower().startswith("geo:"):
        return None
    coords, *params = uri[4:].split(";")
    parts = coords.split(",")
    if len(parts) < 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    out = {"lat": lat, "lon": lon}
    for p in params:
        key, _, value = p.partition("=")
        if key.strip().lower() == "u":
            with contextlib.suppress(ValueError):
                out["accuracy_m"] = float(value)
    return out


def safe_filename(name: str, fallback: str = "file") -> str:
    base = os.path.basename(name.replace("\\", "/")).strip()
    base = _SAFE_NAME.sub("_", base).strip("._")[:120]
    return base or fallback


def to_inbound(
    event: Any,
    room_id: str,
    *,
    me: str,
    is_direct: bool,
    max_media_bytes: int,
    now: float,
) -> Mapped | None:
    """The Inbound for one timeline event; None for the bot's own events and non-messages.

    `me` is the bot's user id, `is_direct` whether the room is a DM (rooms.py decides),
    `now` the arrival time used when the event carries no server timestamp."""
    sender = getattr(event, "sender", None)
    event_id = getattr(event, "event_id", None)
    if not sender or not event_id or sender == me or not is_message(event):
        return None
    meta: dict[str, Any] = {
        "event_id": event_id,
        "room_id": room_id,
        "encrypted": bool(getattr(event, "decrypted", False)) or isinstance(event, MegolmEvent),
    }
    facts: dict[str, Any] = {"is_direct": is_direct}  # Facts' fields, filled as they are seen
    ts = getattr(event, "server_timestamp", 0) or 0

    def make(text: str, attachments: tuple[Attachment, ...] = ()) -> Inbound:
        return Inbound(
            channel=Channel.MATRIX,
            peer=sender,
            conversation=room_id,
            text=text,
            dedup_key=event_id,
            received_at=ts / 1000 if ts else now,
            attachments=attachments,
            meta=meta,
            facts=Facts(**facts),
        )

    if isinstance(event, MegolmEvent):
        facts.update({"undecryptable": True, "msgtype": "m.room.encrypted"})
        meta["session_id"] = getattr(event, "session_id", None)
        meta["encrypted_event"] = {**event.source, "room_id": room_id}
        log.error(
            "matrix: UNDECRYPTABLE event %s from %s in %s (session %s); requesting the key",
            event_id,
            sender,
            room_id,
            meta["session_id"],
        )
        return Mapped(make(""))

    content: dict[str, Any] = dict(event.source.get("content") or {})
    msgtype = str(content.get("msgtype", ""))
    facts["msgtype"] = msgtype
    body = _addressing(content, me, facts)
    log.debug("matrix: event %s %s from %s: %s", event_id, msgtype, sender, redact.body(body))

    if msgtype in TEXT_TYPES:
        return Mapped(make(body))
    if msgtype == "m.location":
        _location(content, event_id, meta, facts)
        return Mapped(make(body))
    if msgtype in MEDIA_KINDS:
        caption, ref = media_ref(event_id, msgtype, content, body, meta, facts, max_media_bytes)
        return Mapped(make(caption), ref)
    log.info("matrix: event %s has msgtype %r; delivered as text", event_id, msgtype)
    return Mapped(make(body))


def _addressing(content: dict[str, Any], me: str, facts: dict[str, Any]) -> str:
    """The body as typed (reply fallback stripped, an edit's new text); marks mentions, replies
    and edits in `facts`."""
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict) and me in (mentions.get("user_ids") or ()):
        facts["addressed"] = True  # an intentional mention (a pill), whatever its text says
    relates = content.get("m.relates_to")
    if not isinstance(relates, dict):
        return body
    reply = relates.get("m.in_reply_to")
    if isinstance(reply, dict) and reply.get("event_id"):
        facts["in_reply_to"] = str(reply["event_id"])
        # The quoted original is for clients that cannot show replies; left in, it hides
        # the command ("> <@lifeline> …\n\n!approve LF-1234") or keyword (STOP) after it.
        # A reply to one of the bot's own messages addresses the bot.
        if reply_fallback_sender(body) == me:
            facts["addressed"] = True
        body = strip_reply_fallback(body)
    if relates.get("rel_type") == "m.replace":
        facts["edit_of"] = str(relates.get("event_id") or "") or None
        new = content.get("m.new_content")
        if isinstance(new, dict) and isinstance(new.get("body"), str):
            body = new["body"]
    return body


def _location(
    content: dict[str, Any], event_id: str, meta: dict[str, Any], facts: dict[str, Any]
) -> None:
    geo = content.get("geo_uri") or ""
    loc = content.get("org.matrix.msc3488.location")
    if not geo and isinstance(loc, dict):
        geo = loc.get("uri", "")
    parsed = parse_geo_uri(str(geo))
    if parsed is None:
        meta["location_error"] = "unparseable"
        log.warning("matrix: event %s has an unparseable geo_uri", event_id)
    else:
        facts["lat"], facts["lon"] = parsed["lat"], parsed["lon"]
        meta.update({k: v for k, v in parsed.items() if k not in ("lat", "lon")})
    meta["geo_uri"] = str(geo)


def media_ref(
    event_id: str,
    msgtype: str,
    content: dict[str, Any],
    body: str,
    meta: dict[str, Any],
    facts: dict[str, Any],
    max_bytes: int,
) -> tuple[str, MediaRef | None]:
    """(caption, what to download); None with ``facts["media_error"]`` set when nothing can be."""
    kind = MEDIA_KINDS[msgtype]
    info = content.get("info") if isinstance(content.get("info"), dict) else {}
    assert isinstance(info, dict)
    enc = content.get("file") if isinstance(content.get("file"), dict) else None
    url = (enc or {}).get("url") if enc else content.get("url")
    filename = content.get("filename") if isinstance(content.get("filename"), str) else None
    mimetype = str(info.get("mimetype") or (enc or {}).get("mimetype") or "")
    if kind == "audio" and any(k in content for k in VOICE_KEYS):
        facts["voice"] = True
        mimetype = mimetype or "audio/ogg"
    caption = body if filename and body and body != filename else ""
    name = safe_filename(filename or body, fallback=kind)
    meta["media_name"] = name
    declared = info.get("size")
    if isinstance(declared, int) and declared > max_bytes:
        facts["media_error"] = "too_large"
        log.warning(
            "matrix: %s %s declares %d bytes > cap %d; not downloaded",
            kind,
            event_id,
            declared,
            max_bytes,
        )
        return caption, None
    if not isinstance(url, str) or not url.startswith("mxc://"):
        facts["media_error"] = "download_failed"
        log.warning("matrix: %s %s has no mxc url", kind, event_id)
        return caption, None
    return caption, MediaRef(kind, url, enc, name, mimetype)
