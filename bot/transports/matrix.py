"""Matrix transport: matrix-nio client, own sync loop, cursor committed with the inbox rows.

Invariants kept here (see docs/architecture.md):
  1. The sync token advances only through `on_batch(inbounds, next_batch)`, which commits the inbox
     rows and the token in one transaction. If it raises, the same window is synced again.
  2. dedup_key = event id, so a replayed window is absorbed by the inbox.
  7. Every network call is bounded by `asyncio.wait_for`/`asyncio.timeout`.
An event that cannot be decrypted is delivered at once (the sender is asked to resend), its key is
requested, and it is delivered again, decrypted, if the key arrives within LATE_KEY_WINDOW_S
(dedup_key ``<event id>:late-key``; pending events survive a restart via ``load_undecrypted``).
Never `logout()`: it deletes the device and its E2EE keys on the homeserver.

Direct chats (``meta["is_direct"]``): the configured coordination room is never one, whatever its
size. Otherwise a room is a DM when ``m.direct`` (the bot's account data, loaded at start and
followed in sync) lists it or the bot was invited with ``is_direct``; only a room nothing declares
falls back to membership (exactly two members).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    DirectRoomsResponse,
    EncryptionError,
    ErrorResponse,
    InviteMemberEvent,
    JoinError,
    KeysQueryError,
    LocalProtocolError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    MessageDirection,
    RoomCreateError,
    RoomMessage,
    RoomMessagesError,
    RoomPreset,
    RoomSendResponse,
    SendRetryError,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)
from nio.api import MATRIX_MEDIA_API_PATH
from nio.crypto.attachments import decrypt_attachment

from bot import redact
from bot.addressing import reply_fallback_sender, strip_reply_fallback
from bot.aio import raise_if_cancelling
from bot.models import Attachment, Channel, Inbound, Outbound, Role
from bot.textclean import clean_text
from config.settings import MatrixSettings, MediaSettings

log = logging.getLogger(__name__)

OnBatch = Callable[[list[Inbound], str], Awaitable[None]]
# Encrypted event sources (with "room_id") and when they arrived, for events still waiting a key.
LoadUndecrypted = Callable[[], Awaitable[list[tuple[dict[str, Any], float]]]]

REQUEST_TIMEOUT_S = 30.0
DOWNLOAD_TIMEOUT_S = 120.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
LATE_KEY_WINDOW_S = 24 * 3600.0  # after this a message whose key never came is given up
MAX_PENDING_UNDECRYPTED = 1000
LATE_KEY_SUFFIX = ":late-key"
_MEDIA_KINDS = {"m.image": "image", "m.audio": "audio", "m.video": "video", "m.file": "file"}
_TEXT_TYPES = {"m.text", "m.notice", "m.emote"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class MatrixSendError(Exception):
    """A send failed. `transient` → retry later (after `retry_after_s` if given)."""

    def __init__(self, reason: str, *, transient: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.retry_after_s = retry_after_s


class MatrixStartError(Exception):
    """Login or store load failed at start; the message says why."""


@dataclass(frozen=True)
class MatrixHealth:
    state: str  # "new" | "connecting" | "online" | "reconnecting" | "auth_failed" | "stopped"
    last_sync_at: float | None
    last_error: str | None
    consecutive_errors: int
    user_id: str


class _SyncFailed(Exception):
    pass


class _TokenRejected(_SyncFailed):
    pass


def _err_text(resp: Any) -> str:
    return str(resp) if resp is not None else "no response"


def _http_status(resp: Any) -> int | None:
    tr = getattr(resp, "transport_response", None)
    status = getattr(tr, "status", None)
    return status if isinstance(status, int) else None


def classify_send_error(resp: Any) -> MatrixSendError:
    """Map a nio ErrorResponse to transient/permanent."""
    errcode = str(getattr(resp, "status_code", "") or "")
    status = _http_status(resp)
    retry_ms = getattr(resp, "retry_after_ms", None)
    reason = _err_text(resp)
    if errcode == "M_LIMIT_EXCEEDED" or status == 429:
        retry = float(retry_ms) / 1000 if retry_ms else None
        return MatrixSendError(reason, transient=True, retry_after_s=retry)
    if status is not None and status >= 500:
        return MatrixSendError(reason, transient=True)
    if errcode in {"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"} or status == 401:
        return MatrixSendError(reason, transient=True)  # re-login in the sync loop fixes it
    if errcode in {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE"}:
        return MatrixSendError(reason, transient=False)
    if status in {400, 403, 404, 413}:
        return MatrixSendError(reason, transient=False)
    return MatrixSendError(reason, transient=True)


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


def media_dir_for(media_root: Path, event_id: str) -> Path:
    return media_root / hashlib.sha256(event_id.encode()).hexdigest()


class _TooLarge(Exception):
    pass


class MatrixTransport:
    def __init__(
        self,
        settings: MatrixSettings,
        media: MediaSettings,
        *,
        load_token: Callable[[], Awaitable[str | None]],
        on_batch: OnBatch,
        role_of: Callable[[str], Role],
        timeline_limit: int = 100,
        max_backfill_events: int = 2000,
        homeserver: str | None = None,
        load_undecrypted: LoadUndecrypted | None = None,
    ) -> None:
        self._settings = settings
        self._load_undecrypted = load_undecrypted
        # event id -> (encrypted event source with room_id, first seen): waiting for a late key
        self._undecrypted: dict[str, tuple[dict[str, Any], float]] = {}
        self._media = media
        self._load_token = load_token
        self._on_batch = on_batch
        self._role_of = role_of
        self._timeline_limit = timeline_limit
        self._max_backfill = max_backfill_events
        self._homeserver = (homeserver or settings.homeserver).rstrip("/")
        self._store_path = Path(settings.store_path)
        self._session_path = self._store_path / "session.json"
        self._client: AsyncClient | None = None
        self._state = "new"
        self._last_sync_at: float | None = None
        self._last_error: str | None = None
        self._errors = 0
        self._pending_invites: dict[str, tuple[str, bool]] = {}
        self._dm_lock = asyncio.Lock()
        self._created_dms: set[str] = set()
        self._aliases: dict[str, str] = {}  # #alias -> room id
        self._direct: dict[str, list[str]] = {}  # m.direct: user -> DM room ids
        self._invited_direct: set[str] = set()  # joined after an is_direct invite
        self._direct_loaded = False
        self._synced = asyncio.Event()
        self._caught_up = asyncio.Event()  # first sync of this run processed (invites joined)
        self._max_bytes = min(media.max_bytes, settings.max_media_bytes)

    # ------------------------------------------------------------------ state
    @property
    def health(self) -> MatrixHealth:
        user = self._client.user_id if self._client is not None else self._settings.user_id
        return MatrixHealth(self._state, self._last_sync_at, self._last_error, self._errors, user)

    @property
    def user_id(self) -> str:
        return self.health.user_id

    def _set_state(self, state: str, detail: str = "") -> None:
        if state == self._state:
            return
        old, self._state = self._state, state
        level = logging.WARNING if state in {"reconnecting", "auth_failed"} else logging.INFO
        log.log(level, "matrix: %s -> %s%s", old, state, f" ({detail})" if detail else "")

    def _require_client(self) -> AsyncClient:
        if self._client is None:
            raise MatrixSendError("matrix transport not started", transient=True)
        return self._client

    async def wait_caught_up(self) -> None:
        """Returns once this run's first sync is processed: sending before it would hit rooms the
        bot is invited to but has not joined yet (M_FORBIDDEN, a permanent failure)."""
        await self._caught_up.wait()

    # ------------------------------------------------------------------ session
    def _read_session(self) -> dict[str, str] | None:
        try:
            data: dict[str, str] = json.loads(self._session_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            log.error("matrix: %s is corrupt; ignoring it", self._session_path)
            return None
        if data.get("user_id") != self._settings.user_id or not data.get("access_token"):
            return None
        return data

    def _write_session(self, client: AsyncClient) -> None:
        data = {
            "homeserver": self._homeserver,
            "user_id": client.user_id,
            "device_id": client.device_id,
            "access_token": client.access_token,
        }
        tmp = self._session_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._session_path)

    async def start(self) -> None:
        """Restore the session (or log in once with the password) and load the E2EE store."""
        if not self._homeserver:
            raise MatrixStartError("matrix.homeserver is empty")
        self._store_path.mkdir(parents=True, exist_ok=True)
        os.chmod(self._store_path, 0o700)
        config = AsyncClientConfig(
            encryption_enabled=self._settings.encryption,
            store_sync_tokens=False,  # the token is committed with the inbox rows, by on_batch
            max_limit_exceeded=0,  # 429 comes back to us instead of nio sleeping silently
            max_timeouts=0,  # connection errors raise; our loop backs off and reports
            request_timeout=REQUEST_TIMEOUT_S,
        )
        client = AsyncClient(
            self._homeserver,
            self._settings.user_id,
            store_path=str(self._store_path),
            config=config,
        )
        self._client = client
        token = self._settings.access_token.get_secret_value()
        session = self._read_session()
        try:
            if token and self._settings.device_id:
                client.restore_login(self._settings.user_id, self._settings.device_id, token)
                log.info("matrix: session from settings, device %s", self._settings.device_id)
            elif session is not None:
                client.restore_login(
                    session["user_id"], session["device_id"], session["access_token"]
                )
                log.info("matrix: session restored from store, device %s", session["device_id"])
            else:
                await self._password_login(device_id=None)
        except MatrixStartError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise MatrixStartError(f"matrix login failed: {exc!r}") from exc
        except Exception as exc:  # olm store load errors etc.
            raise MatrixStartError(f"matrix session/store load failed: {exc!r}") from exc

    async def _password_login(self, device_id: str | None) -> None:
        client = self._require_client()
        password = self._settings.password.get_secret_value()
        if not password:
            self._set_state("auth_failed", "no password configured")
            raise MatrixStartError("matrix: no valid session and no password to log in")
        if device_id:
            client.device_id = device_id  # same device → same E2EE identity
        resp = await asyncio.wait_for(
            client.login(password=password, device_name="lifeline"), REQUEST_TIMEOUT_S
        )
        if not isinstance(resp, LoginResponse):
            self._set_state("auth_failed", _err_text(resp))
            raise MatrixStartError(f"matrix login failed: {_err_text(resp)}")
        self._write_session(client)
        log.info("matrix: logged in as %s, device %s", resp.user_id, resp.device_id)

    async def _check_session(self) -> None:
        """whoami; on an invalid token log in again with the same device id."""
        client = self._require_client()
        resp = await asyncio.wait_for(client.whoami(), REQUEST_TIMEOUT_S)
        if isinstance(resp, WhoamiResponse):
            return
        if getattr(resp, "status_code", "") in {"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"}:
            log.warning("matrix: access token rejected (%s); logging in again", _err_text(resp))
            await self._password_login(device_id=client.device_id)
            return
        raise _SyncFailed(f"whoami: {_err_text(resp)}")

    # ------------------------------------------------------------------ sync loop
    def _sync_filter(self) -> dict[str, Any]:
        return {
            "presence": {"not_types": ["*"]},
            "room": {
                "timeline": {"limit": self._timeline_limit},
                "state": {"lazy_load_members": False},
                "ephemeral": {"not_types": ["*"]},
            },
        }

    async def run(self) -> None:
        client = self._require_client()
        since = await self._load_token()
        log.info("matrix: sync loop starting (%s)", "resume" if since else "first sync")
        if self._load_undecrypted is not None:
            for source, seen in await self._load_undecrypted():
                self._remember_undecrypted(source, seen)
        backoff = BACKOFF_MIN_S
        session_checked = False
        # Resuming from a stored token, the client knows no room state (members: is it a DM? whom
        # to share room keys with?); the first sync asks for the full state of every room.
        full_state = since is not None
        timeout_ms = int(self._settings.sync_timeout_s * 1000)
        try:
            while True:
                raise_if_cancelling()
                try:
                    if not session_checked:
                        self._set_state("connecting" if self._errors == 0 else "reconnecting")
                        await self._check_session()
                        session_checked = True
                    if not self._direct_loaded:
                        await self._load_direct()
                    await self._key_maintenance()
                    long_poll = timeout_ms if self._last_sync_at is not None else 0
                    try:
                        resp = await self._sync(since, long_poll, full_state=full_state)
                    except _TokenRejected:
                        session_checked = False
                        raise
                    self._follow_direct(resp)
                    inbounds, undecryptable = await self._collect(resp, since)
                    await self._on_batch(inbounds, resp.next_batch)
                    since, full_state = resp.next_batch, False
                    self._last_sync_at = time.time()
                    if self._errors:
                        log.warning("matrix: recovered after %d failed attempts", self._errors)
                    self._errors = 0
                    self._last_error = None
                    backoff = BACKOFF_MIN_S
                    self._set_state("online")
                    self._synced.set()
                    self._synced = asyncio.Event()
                    await self._after_batch(resp, undecryptable)
                    self._caught_up.set()
                    await self._deliver_late_decrypted(since)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure: logged, counted, retried
                    _reraise_if_cancelling(exc)
                    client.next_batch = since  # let nio re-process the replayed window
                    self._errors += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"[:500]
                    if isinstance(exc, MatrixStartError):
                        self._set_state("auth_failed", self._last_error)
                        session_checked = False
                    else:
                        self._set_state("reconnecting", self._last_error)
                    log.warning(
                        "matrix: sync attempt failed (%d in a row), retry in %.0fs: %s",
                        self._errors,
                        backoff,
                        self._last_error,
                    )
                    if isinstance(exc, aiohttp.ClientError | OSError | TimeoutError):
                        session_checked = False  # re-check the token once reachable again
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
        finally:
            await self.close()

    async def _sync(
        self, since: str | None, long_poll_ms: int, *, full_state: bool = False
    ) -> SyncResponse:
        client = self._require_client()
        resp = await _bounded(
            client.sync(
                timeout=long_poll_ms,
                sync_filter=self._sync_filter(),
                since=since,
                full_state=full_state or None,
            ),
            long_poll_ms / 1000 + 20,  # nio's own HTTP timeout (+15 s) fires first
        )
        if isinstance(resp, SyncResponse):
            return resp
        if getattr(resp, "status_code", "") in {"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"}:
            raise _TokenRejected(f"sync: {_err_text(resp)}")
        raise _SyncFailed(f"sync: {_err_text(resp)}")

    async def _key_maintenance(self) -> None:
        client = self._require_client()
        if client.olm is None:
            return
        await asyncio.wait_for(client.send_to_device_messages(), REQUEST_TIMEOUT_S)
        if client.should_upload_keys:
            resp = await asyncio.wait_for(client.keys_upload(), REQUEST_TIMEOUT_S)
            if isinstance(resp, ErrorResponse):
                log.warning("matrix: keys_upload failed: %s", resp)
        if client.should_query_keys:
            resp = await asyncio.wait_for(client.keys_query(), REQUEST_TIMEOUT_S)
            if isinstance(resp, ErrorResponse):
                log.warning("matrix: keys_query failed: %s", resp)
        if client.should_claim_keys:
            users = client.get_users_for_key_claiming()
            resp = await asyncio.wait_for(client.keys_claim(users), REQUEST_TIMEOUT_S)
            if isinstance(resp, ErrorResponse):
                log.warning("matrix: keys_claim failed: %s", resp)

    async def _page_back(self, room_id: str, prev_batch: str, since: str) -> list[Any]:
        """Events between `since` and the start of a limited timeline, oldest first."""
        client = self._require_client()
        collected: list[Any] = []
        token = prev_batch
        while True:
            resp = await asyncio.wait_for(
                client.room_messages(
                    room_id, start=token, end=since, direction=MessageDirection.back, limit=100
                ),
                REQUEST_TIMEOUT_S,
            )
            if isinstance(resp, RoomMessagesError | ErrorResponse):
                raise _SyncFailed(f"room_messages {room_id}: {_err_text(resp)}")
            collected.extend(resp.chunk)
            if not resp.chunk or not resp.end or resp.end == token:
                break
            if len(collected) >= self._max_backfill:
                log.error(
                    "matrix: backfill cap %d reached in %s; older missed events not fetched",
                    self._max_backfill,
                    room_id,
                )
                break
            token = resp.end
        collected.reverse()
        log.info("matrix: paged back %d events in %s (limited timeline)", len(collected), room_id)
        return collected

    async def _collect(
        self, resp: SyncResponse, since: str | None
    ) -> tuple[list[Inbound], list[Any]]:
        client = self._require_client()
        inbounds: list[Inbound] = []
        undecryptable: list[Any] = []
        skipped = 0
        for room_id, info in resp.rooms.join.items():
            events = list(info.timeline.events)
            if since is None:
                skipped += sum(1 for e in events if isinstance(e, RoomMessage | MegolmEvent))
                continue  # first sync ever: history from before the gateway existed
            if info.timeline.limited and info.timeline.prev_batch:
                older = await self._page_back(room_id, info.timeline.prev_batch, since)
                seen = {getattr(e, "event_id", None) for e in events}
                events = [e for e in older if getattr(e, "event_id", None) not in seen] + events
            room = client.rooms.get(room_id)
            for event in events:
                inbound = await self._to_inbound(event, room_id, room)
                if inbound is None:
                    continue
                inbounds.append(inbound)
                if inbound.meta.get("undecryptable"):
                    undecryptable.append(event)
        if skipped:
            log.info(
                "matrix: first sync, %d earlier messages not delivered (pre-start history)", skipped
            )
        return inbounds, undecryptable

    # ------------------------------------------------------------------ events → Inbound
    async def _to_inbound(
        self, event: Any, room_id: str, room: MatrixRoom | None
    ) -> Inbound | None:
        client = self._require_client()
        sender = getattr(event, "sender", None)
        event_id = getattr(event, "event_id", None)
        if not sender or not event_id or sender == client.user_id:
            return None
        if not isinstance(event, RoomMessage | MegolmEvent):
            return None
        role = self._role_of(sender)
        is_direct = self.is_direct(room_id, room)
        meta: dict[str, Any] = {
            "event_id": event_id,
            "room_id": room_id,
            "is_direct": is_direct,
            "role": role.value,
            "encrypted": bool(getattr(event, "decrypted", False)) or isinstance(event, MegolmEvent),
        }
        ts = getattr(event, "server_timestamp", 0) or 0
        received_at = ts / 1000 if ts else time.time()

        def make(text: str, attachments: tuple[Attachment, ...] = ()) -> Inbound:
            return Inbound(
                channel=Channel.MATRIX,
                peer=sender,
                conversation=room_id,
                text=text,
                dedup_key=event_id,
                received_at=received_at,
                attachments=attachments,
                meta=meta,
            )

        if isinstance(event, MegolmEvent):
            meta.update({"undecryptable": True, "msgtype": "m.room.encrypted"})
            meta["session_id"] = getattr(event, "session_id", None)
            event.room_id = room_id  # paged-back events lack it; key requests need it
            meta["encrypted_event"] = {**event.source, "room_id": room_id}
            log.error(
                "matrix: UNDECRYPTABLE event %s from %s in %s (session %s); requesting the key",
                event_id,
                sender,
                room_id,
                meta["session_id"],
            )
            return make("")

        content: dict[str, Any] = dict(event.source.get("content") or {})
        msgtype = str(content.get("msgtype", ""))
        meta["msgtype"] = msgtype
        body = content.get("body")
        body = body if isinstance(body, str) else ""
        mentions = content.get("m.mentions")
        if isinstance(mentions, dict) and client.user_id in (mentions.get("user_ids") or ()):
            meta["addressed"] = True  # an intentional mention (a pill), whatever its text says
        relates = content.get("m.relates_to")
        if isinstance(relates, dict):
            reply = relates.get("m.in_reply_to")
            if isinstance(reply, dict) and reply.get("event_id"):
                meta["in_reply_to"] = reply["event_id"]
                # The quoted original is for clients that cannot show replies; left in, it hides
                # the command ("> <@lifeline> …\n\n!approve LF-1234") or keyword (STOP) after it.
                # A reply to one of the bot's own messages addresses the bot.
                if reply_fallback_sender(body) == client.user_id:
                    meta["addressed"] = True
                body = strip_reply_fallback(body)
            if relates.get("rel_type") == "m.replace":
                meta["edit_of"] = relates.get("event_id")
                new = content.get("m.new_content")
                if isinstance(new, dict) and isinstance(new.get("body"), str):
                    body = new["body"]
        log.debug("matrix: event %s %s from %s: %s", event_id, msgtype, sender, redact.body(body))

        if msgtype in _TEXT_TYPES:
            return make(body)
        if msgtype == "m.location":
            geo = content.get("geo_uri") or ""
            loc = content.get("org.matrix.msc3488.location")
            if not geo and isinstance(loc, dict):
                geo = loc.get("uri", "")
            parsed = parse_geo_uri(str(geo))
            if parsed is None:
                meta["location_error"] = "unparseable"
                log.warning("matrix: event %s has an unparseable geo_uri", event_id)
            else:
                meta.update(parsed)
            meta["geo_uri"] = str(geo)
            return make(body)
        if msgtype in _MEDIA_KINDS:
            return await self._media_inbound(event_id, msgtype, content, body, meta, make)
        log.info("matrix: event %s has msgtype %r; delivered as text", event_id, msgtype)
        return make(body)

    async def _media_inbound(
        self,
        event_id: str,
        msgtype: str,
        content: dict[str, Any],
        body: str,
        meta: dict[str, Any],
        make: Callable[[str, tuple[Attachment, ...]], Inbound],
    ) -> Inbound:
        kind = _MEDIA_KINDS[msgtype]
        info = content.get("info") if isinstance(content.get("info"), dict) else {}
        assert isinstance(info, dict)
        enc = content.get("file") if isinstance(content.get("file"), dict) else None
        url = (enc or {}).get("url") if enc else content.get("url")
        filename = content.get("filename") if isinstance(content.get("filename"), str) else None
        mimetype = str(info.get("mimetype") or (enc or {}).get("mimetype") or "")
        if kind == "audio" and (
            "org.matrix.msc3245.voice" in content or "org.matrix.msc3245.voice.v2" in content
        ):
            meta["voice"] = True
            mimetype = mimetype or "audio/ogg"
        caption = body if filename and body and body != filename else ""
        name = safe_filename(filename or body, fallback=kind)
        meta["media_name"] = name
        declared = info.get("size")
        if isinstance(declared, int) and declared > self._max_bytes:
            meta["media_error"] = "too_large"
            log.warning(
                "matrix: %s %s declares %d bytes > cap %d; not downloaded",
                kind,
                event_id,
                declared,
                self._max_bytes,
            )
            return make(caption, ())
        if not isinstance(url, str) or not url.startswith("mxc://"):
            meta["media_error"] = "download_failed"
            log.warning("matrix: %s %s has no mxc url", kind, event_id)
            return make(caption, ())
        dest = media_dir_for(Path(self._media.dir), event_id) / name
        try:
            size = await self._download(url, dest, enc)
        except _TooLarge:
            meta["media_error"] = "too_large"
            log.warning(
                "matrix: %s %s exceeded cap %d while downloading", kind, event_id, self._max_bytes
            )
            return make(caption, ())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure → Inbound with media_error
            _reraise_if_cancelling(exc)
            meta["media_error"] = "download_failed"
            log.warning("matrix: %s %s download failed: %r", kind, event_id, exc)
            return make(caption, ())
        att = Attachment(
            kind=kind,
            mimetype=mimetype or "application/octet-stream",
            path=str(dest),
            size=size,
            name=name,
        )
        return make(caption, (att,))

    async def _download(self, mxc: str, dest: Path, enc: dict[str, Any] | None) -> int:
        """Stream an authenticated-media download, stopping at the cap; returns bytes written."""
        client = self._require_client()
        parsed = urllib.parse.urlparse(mxc)
        server = urllib.parse.quote(parsed.netloc, safe="")
        media_id = urllib.parse.quote(parsed.path.lstrip("/"), safe="")
        path = f"{MATRIX_MEDIA_API_PATH}/download/{server}/{media_id}?allow_remote=true"
        headers = {"Authorization": f"Bearer {client.access_token}"}
        buf = bytearray()
        async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
            http = await client.send("GET", path, headers=headers, timeout=DOWNLOAD_TIMEOUT_S)
            try:
                if http.status != 200:
                    raise _SyncFailed(f"download HTTP {http.status}")
                if http.content_length is not None and http.content_length > self._max_bytes:
                    raise _TooLarge
                async for chunk in http.content.iter_chunked(64 * 1024):
                    buf.extend(chunk)
                    if len(buf) > self._max_bytes:
                        raise _TooLarge
            finally:
                http.release()
        data = bytes(buf)
        if enc is not None:
            key = enc.get("key", {}).get("k")
            sha = enc.get("hashes", {}).get("sha256")
            iv = enc.get("iv")
            data = await asyncio.to_thread(decrypt_attachment, data, key, sha, iv)

        def write() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, dest)

        await asyncio.to_thread(write)
        return len(data)

    # ------------------------------------------------------------------ after commit
    async def _after_batch(self, resp: SyncResponse, undecryptable: list[Any]) -> None:
        client = self._require_client()
        for event in undecryptable:
            self._remember_undecrypted({**event.source, "room_id": event.room_id}, time.time())
            try:
                r = await asyncio.wait_for(client.request_room_key(event), REQUEST_TIMEOUT_S)
                if isinstance(r, ErrorResponse):
                    log.warning("matrix: room key request failed: %s", r)
            except LocalProtocolError:
                pass  # already requested for this session
        for room_id, info in resp.rooms.invite.items():
            inviter, is_direct = "", False
            for ev in info.invite_state:
                if (
                    isinstance(ev, InviteMemberEvent)
                    and ev.state_key == client.user_id
                    and ev.membership == "invite"
                ):
                    inviter = ev.sender
                    is_direct = bool(ev.content.get("is_direct"))
            self._pending_invites[room_id] = (inviter, is_direct)
        for room_id, (inviter, is_direct) in list(self._pending_invites.items()):
            await self._handle_invite(room_id, inviter, is_direct)

    def _remember_undecrypted(self, source: dict[str, Any], seen: float) -> None:
        event_id = source.get("event_id")
        if not isinstance(event_id, str) or not source.get("room_id"):
            return
        if len(self._undecrypted) >= MAX_PENDING_UNDECRYPTED:
            oldest = min(self._undecrypted, key=lambda k: self._undecrypted[k][1])
            log.error("matrix: too many events waiting for keys; giving up on %s", oldest)
            del self._undecrypted[oldest]
        self._undecrypted.setdefault(event_id, (source, seen))

    async def _deliver_late_decrypted(self, token: str) -> None:
        """Deliver (as new inbox rows) events whose megolm key has arrived since they came in."""
        client = self._require_client()
        if not self._undecrypted or client.olm is None:
            return
        now, late, settled = time.time(), [], []
        for event_id, (source, seen) in self._undecrypted.items():
            room_id = str(source["room_id"])
            event = MegolmEvent.from_dict(source)
            if not isinstance(event, MegolmEvent):
                settled.append(event_id)
                continue
            if client.olm.inbound_group_store.get(room_id, event.sender_key, event.session_id):
                settled.append(event_id)
                try:
                    decrypted = client.decrypt_event(event)
                except EncryptionError as exc:
                    log.error("matrix: late key for %s did not decrypt it: %s", event_id, exc)
                    continue
                inbound = await self._to_inbound(decrypted, room_id, client.rooms.get(room_id))
                if inbound is not None:
                    meta = {**inbound.meta, "late_key": True}
                    late.append(replace(inbound, dedup_key=event_id + LATE_KEY_SUFFIX, meta=meta))
            elif now - seen > LATE_KEY_WINDOW_S:
                settled.append(event_id)
                log.error(
                    "matrix: key for %s from %s never arrived (%d h); the sender was asked to "
                    "resend",
                    event_id,
                    redact.mask_peer(str(source.get("sender", ""))),
                    LATE_KEY_WINDOW_S // 3600,
                )
        if late:
            await self._on_batch(late, token)  # committed before they leave the waiting list
            log.warning(
                "matrix: %d message(s) decrypted after their key arrived late; delivered now",
                len(late),
            )
        for event_id in settled:
            self._undecrypted.pop(event_id, None)

    async def _handle_invite(self, room_id: str, inviter: str, is_direct: bool) -> None:
        client = self._require_client()
        role = self._role_of(inviter) if inviter else Role.PUBLIC
        if role != Role.PUBLIC or is_direct:
            resp = await asyncio.wait_for(client.join(room_id), REQUEST_TIMEOUT_S)
            if isinstance(resp, JoinError):
                err = classify_send_error(resp)
                log.warning("matrix: join %s (invited by %s) failed: %s", room_id, inviter, resp)
                if not err.transient:
                    self._pending_invites.pop(room_id, None)
                return
            self._pending_invites.pop(room_id, None)
            if is_direct and inviter:
                self._invited_direct.add(room_id)
                await self._remember_direct(inviter, room_id)
            log.info(
                "matrix: joined %s (invited by %s, role %s, direct %s)",
                room_id,
                inviter,
                role,
                is_direct,
            )
        else:
            resp2 = await asyncio.wait_for(client.room_leave(room_id), REQUEST_TIMEOUT_S)
            if isinstance(resp2, ErrorResponse) and classify_send_error(resp2).transient:
                log.warning("matrix: rejecting invite %s failed, will retry: %s", room_id, resp2)
                return
            self._pending_invites.pop(room_id, None)
            log.warning(
                "matrix: refused group-room invite to %s from %s (public user, not a DM)",
                room_id,
                inviter,
            )

    # ------------------------------------------------------------------ sending
    async def send(self, out: Outbound) -> str:
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
        reply_to = out.meta.get("in_reply_to")
        if isinstance(reply_to, str) and reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        log.debug(
            "matrix: send %s to %s: %s", out.idem_key, out.conversation, redact.body(out.text)
        )
        room_id = await self.resolve_room(out.conversation)
        return await self._room_send(room_id, content, out.idem_key)

    async def _room_send(self, room_id: str, content: dict[str, Any], tx_id: str) -> str:
        client = self._require_client()
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
            raise MatrixSendError(f"network: {exc!r}", transient=True) from exc
        except (LocalProtocolError, SendRetryError) as exc:
            # e.g. room not synced yet (encrypted send needs its member list): retry later
            raise MatrixSendError(f"local: {exc}", transient=True) from exc
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

    async def send_image(self, room_id: str, png_or_jpeg: bytes, body: str, *, tx_id: str) -> str:
        client = self._require_client()
        room_id = await self.resolve_room(room_id)
        if png_or_jpeg.startswith(b"\x89PNG"):
            mimetype, ext = "image/png", "png"
        elif png_or_jpeg.startswith(b"\xff\xd8"):
            mimetype, ext = "image/jpeg", "jpg"
        else:
            raise MatrixSendError("send_image: not a PNG or JPEG", transient=False)
        info: dict[str, Any] = {"mimetype": mimetype, "size": len(png_or_jpeg)}
        dims = await asyncio.to_thread(_image_size, png_or_jpeg)
        if dims is not None:
            info["w"], info["h"] = dims
        room = client.rooms.get(room_id)
        encrypt = bool(room is not None and room.encrypted and client.olm is not None)
        filename = f"{safe_filename(tx_id)}.{ext}"
        try:
            up, keys = await asyncio.wait_for(
                client.upload(
                    lambda _a, _b: png_or_jpeg,
                    content_type=mimetype,
                    filename=filename,
                    encrypt=encrypt,
                    filesize=len(png_or_jpeg),
                ),
                REQUEST_TIMEOUT_S * 2,
            )
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise MatrixSendError(f"upload network: {exc!r}", transient=True) from exc
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
        return await self._room_send(room_id, content, tx_id)

    # ------------------------------------------------------------------ DMs
    def is_direct(self, room_id: str, room: MatrixRoom | None) -> bool:
        """Is this room a direct chat with one person (see the module docstring for the order)?"""
        if self._is_coordination_room(room_id, room):
            return False  # staff chatter there is recorded, never answered as a DM
        if room_id in self._invited_direct or any(room_id in r for r in self._direct.values()):
            return True
        return room is not None and room.member_count == 2

    def _is_coordination_room(self, room_id: str, room: MatrixRoom | None) -> bool:
        configured = self._settings.coordination_room
        if not configured:
            return False
        if configured.startswith("#"):
            aliases = {getattr(room, "canonical_alias", None)} if room is not None else set()
            return self._aliases.get(configured) == room_id or configured in aliases
        return configured == room_id

    async def _load_direct(self) -> None:
        """m.direct at start: after a restart the sync resumes and does not repeat it."""
        client = self._require_client()
        resp = await asyncio.wait_for(client.list_direct_rooms(), REQUEST_TIMEOUT_S)
        if isinstance(resp, DirectRoomsResponse):
            self._direct = {k: list(v) for k, v in resp.rooms.items()}
        elif getattr(resp, "status_code", "") != "M_NOT_FOUND":  # none yet is fine
            raise _SyncFailed(f"m.direct: {_err_text(resp)}")
        self._direct_loaded = True
        log.info("matrix: %d direct chat(s) in m.direct", sum(map(len, self._direct.values())))

    def _follow_direct(self, resp: SyncResponse) -> None:
        for event in resp.account_data_events:
            if getattr(event, "type", None) == "m.direct" and isinstance(
                getattr(event, "content", None), dict
            ):
                self._direct = {
                    str(k): [str(r) for r in v]
                    for k, v in event.content.items()
                    if isinstance(v, list)
                }

    async def _remember_direct(self, user_id: str, room_id: str) -> None:
        """Record a DM we joined in m.direct, so it is still a DM after a restart."""
        async with self._dm_lock:
            rooms = self._direct.setdefault(user_id, [])
            if room_id in rooms:
                return
            rooms.append(room_id)
            try:
                await self._put_account_data("m.direct", self._direct)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # the invite flag still holds for this run; membership decides after a restart
                log.warning("matrix: could not record DM %s in m.direct: %r", room_id, exc)

    async def dm_room_for(self, user_id: str) -> str:
        """A 1:1 room with `user_id`: m.direct, then any 2-member room, else a new DM (invite)."""
        client = self._require_client()
        async with self._dm_lock:
            direct: dict[str, list[str]] = {}
            resp = await asyncio.wait_for(client.list_direct_rooms(), REQUEST_TIMEOUT_S)
            if isinstance(resp, DirectRoomsResponse):
                direct = {k: list(v) for k, v in resp.rooms.items()}
            for rid in direct.get(user_id, []):
                room = client.rooms.get(rid)
                # m.direct is ours: trust it while the room is still a 1:1 (the invite of a
                # freshly created DM may not be in the member list yet)
                if room is None or room.member_count > 2:
                    continue
                if user_id in room.users or rid in self._created_dms:
                    return rid
            for rid, room in client.rooms.items():
                if (
                    room.member_count == 2
                    and user_id in room.users
                    and not self._is_coordination_room(rid, room)
                ):
                    return str(rid)
            initial_state: list[dict[str, Any]] = []
            if self._settings.encryption:
                initial_state.append(
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                )
            created = await asyncio.wait_for(
                client.room_create(
                    is_direct=True,
                    invite=[user_id],
                    preset=RoomPreset.trusted_private_chat,
                    initial_state=initial_state,
                ),
                REQUEST_TIMEOUT_S,
            )
            if isinstance(created, RoomCreateError):
                raise classify_send_error(created)
            rid = str(created.room_id)
            self._created_dms.add(rid)
            direct.setdefault(user_id, []).append(rid)
            await self._put_account_data("m.direct", direct)
            self._direct = direct
            log.info("matrix: created DM %s with %s", rid, user_id)
        await self._wait_room_known(rid, REQUEST_TIMEOUT_S)
        return rid

    def remember_alias(self, alias: str, room_id: str) -> None:
        """A local name for a room (e.g. the drill's coordination room before it was known)."""
        self._aliases[alias] = room_id

    async def resolve_room(self, room: str) -> str:
        """Room id for a room id or a #alias (e.g. settings.matrix.coordination_room); cached.
        Raises MatrixSendError (transient while the homeserver is unreachable)."""
        if not room.startswith("#"):
            return room
        if room in self._aliases:
            return self._aliases[room]
        client = self._require_client()
        try:
            resp = await asyncio.wait_for(client.room_resolve_alias(room), REQUEST_TIMEOUT_S)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise MatrixSendError(f"resolving {room}: network: {exc!r}", transient=True) from exc
        if isinstance(resp, ErrorResponse):
            raise classify_send_error(resp)
        log.info("matrix: %s is %s", room, resp.room_id)
        self._aliases[room] = str(resp.room_id)
        return self._aliases[room]

    async def _put_account_data(self, kind: str, data: dict[str, Any]) -> None:
        client = self._require_client()
        path = f"/_matrix/client/v3/user/{urllib.parse.quote(client.user_id)}/account_data/{kind}"
        headers = {
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        }
        http = await asyncio.wait_for(
            client.send("PUT", path, json.dumps(data), headers=headers), REQUEST_TIMEOUT_S
        )
        try:
            if http.status != 200:
                log.warning("matrix: saving %s account data failed: HTTP %d", kind, http.status)
        finally:
            http.release()

    async def _wait_room_known(self, room_id: str, timeout: float) -> None:  # noqa: ASYNC109
        client = self._require_client()
        deadline = time.monotonic() + timeout
        while room_id not in client.rooms and self._state == "online":
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), left)

    async def close(self) -> None:
        """Close HTTP; keep device, token and keys (no logout)."""
        client = self._client
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10)
        if self._state != "stopped":
            self._set_state("stopped")


async def _bounded(coro: Awaitable[Any], timeout: float) -> Any:  # noqa: ASYNC109
    """Like asyncio.wait_for, but a cancellation of the caller never waits for the inner task.

    Seen here: a nio sync whose cancellation was absorbed somewhere in nio/aiohttp, leaving
    wait_for (which awaits the cancelled inner task) and so the whole shutdown hanging.
    """
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {timeout:.0f}s")
    return task.result()


def _reraise_if_cancelling(exc: BaseException) -> None:
    """aiohttp/nio can turn our cancellation into a TimeoutError; never let that swallow it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            return int(w), int(h)
    except Exception:  # noqa: BLE001 - dimensions are optional metadata
        return None
