"""E2EE upkeep: device keys uploaded/queried/claimed before each sync, room keys requested for
events that arrived undecryptable, and those events kept (up to LATE_KEY_WINDOW_S) until their
key arrives, then handed back decrypted so they are delivered a second time
(dedup_key ``<event id>:late-key``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, EncryptionError, ErrorResponse, LocalProtocolError, MegolmEvent

from bot import redact
from bot.transports.matrix.session import REQUEST_TIMEOUT_S

log = logging.getLogger(__name__)

LATE_KEY_WINDOW_S = 24 * 3600.0  # after this a message whose key never came is given up
MAX_PENDING_UNDECRYPTED = 1000
LATE_KEY_SUFFIX = ":late-key"


async def key_maintenance(client: AsyncClient) -> None:
    """Send queued to-device messages; upload, query and claim keys as nio asks."""
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


@dataclass(frozen=True)
class LateKey:
    """An event whose key has arrived: decrypted now, to be delivered again."""

    event_id: str
    room_id: str
    event: Any  # the decrypted nio event


class Undecrypted:
    """Events waiting for their megolm key: event id → (encrypted source with room_id, seen)."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[dict[str, Any], float]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def remember(self, source: dict[str, Any], seen: float) -> None:
        event_id = source.get("event_id")
        if not isinstance(event_id, str) or not source.get("room_id"):
            return
        if len(self._waiting) >= MAX_PENDING_UNDECRYPTED:
            oldest = min(self._waiting, key=lambda k: self._waiting[k][1])
            log.error("matrix: too many events waiting for keys; giving up on %s", oldest)
            del self._waiting[oldest]
        self._waiting.setdefault(event_id, (source, seen))

    async def request_keys(self, client: AsyncClient, events: list[Any], now: float) -> None:
        """Wait for (and ask the sender's devices for) the keys of these undecryptable events."""
        for event in events:
            self.remember({**event.source, "room_id": event.room_id}, now)
            try:
                r = await asyncio.wait_for(client.request_room_key(event), REQUEST_TIMEOUT_S)
                if isinstance(r, ErrorResponse):
                    log.warning("matrix: room key request failed: %s", r)
            except LocalProtocolError:
                pass  # already requested for this session

    def settle(self, client: AsyncClient, now: float) -> tuple[list[LateKey], list[str]]:
        """(events whose key has arrived, decrypted; every event id that stops waiting). The
        caller forgets the settled ids only once the late events are committed."""
        late: list[LateKey] = []
        settled: list[str] = []
        if client.olm is None:
            return late, settled
        for event_id, (source, seen) in self._waiting.items():
            room_id = str(source["room_id"])
            event = MegolmEvent.from_dict(source)
            if not isinstance(event, MegolmEvent):
                settled.append(event_id)
                continue
            if client.olm.inbound_group_store.get(room_id, event.sender_key, event.session_id):
                settled.append(event_id)
                try:
                    late.append(LateKey(event_id, room_id, client.decrypt_event(event)))
                except EncryptionError as exc:
                    log.error("matrix: late key for %s did not decrypt it: %s", event_id, exc)
            elif now - seen > LATE_KEY_WINDOW_S:
                settled.append(event_id)
                log.error(
                    "matrix: key for %s from %s never arrived (%d h); the sender was asked to "
                    "resend",
                    event_id,
                    redact.mask_peer(str(source.get("sender", ""))),
                    LATE_KEY_WINDOW_S // 3600,
                )
        return late, settled

    def forget(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self._waiting.pop(event_id, None)
