"""Sender adapters: what an OutboxWorker calls to send one row on its channel, and what it calls
when a row is dead. Transport errors become queue `SendError`s here, keeping their kind
(transient or not) and the server's retry-after."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.models import Lane, Outbound, Priority
from bot.queue import DeadNotice, Sender, SendError
from bot.store import incidents, outbox
from bot.store.db import Database
from bot.store.outbox import OutboxRow
from handlers.context import Notifier

if TYPE_CHECKING:
    from bot.transports.matrix import MatrixTransport
    from bot.transports.sms import ModemPool


def sms_sender(
    pool: ModemPool, db_path: Path | None = None, clock: Callable[[], float] = time.time
) -> Sender:
    """With `db_path`, a send is recorded as sent on the modem thread the moment the modem
    accepted it, so a crash right after cannot send it twice."""
    from bot.transports.sms import SendError as ModemSendError

    async def send(row: OutboxRow) -> tuple[str, str]:
        def accepted(via: str, ref: str) -> None:  # on the modem thread, at once
            assert db_path is not None
            outbox.mark_sent_on_this_thread(db_path, row.id, via=via, ref=ref, now=clock())

        try:
            return await pool.send(
                row.peer,
                row.text,
                idem_key=row.idem_key,
                prefer=row.meta.get("modem"),
                on_accepted=accepted if db_path is not None else None,
            )
        except ModemSendError as exc:
            raise SendError(exc.reason, transient=exc.transient) from exc

    return send


def matrix_sender(transport: MatrixTransport) -> Sender:
    from bot.transports.matrix import MatrixSendError

    async def send(row: OutboxRow) -> tuple[str, str]:
        image_path = row.meta.get("image_path")
        try:
            if isinstance(image_path, str) and image_path:
                try:
                    data = await asyncio.to_thread(Path(image_path).read_bytes)
                except OSError as exc:
                    raise SendError(f"image {image_path}: {exc}", transient=False) from exc
                body = str(row.meta.get("body") or row.text)
                event = await transport.send_image(row.conversation, data, body, tx_id=row.idem_key)
                return "matrix", event
            return "matrix", await transport.send(row.to_outbound())
        except MatrixSendError as exc:
            raise SendError(
                exc.reason, transient=exc.transient, retry_after_s=exc.retry_after_s
            ) from exc

    return send


def dead_reply_notice(db: Database, notifier: Notifier) -> DeadNotice:
    """A message to a victim that can never be delivered (invalid number, blocked SIM) is
    told to the coordinators once, with the case and the reason: someone must reach them
    another way."""

    async def notice(row: OutboxRow, reason: str) -> list[Outbound]:
        room = notifier.coordination_room
        if row.incident_id is None or row.conversation == room:
            return []  # not a victim's message, or the alert room itself
        async with db.transaction() as conn:
            incident = await incidents.get(conn, row.incident_id)
        if incident is None:
            return []
        alert = notifier.to_coordinators(
            f"[ATTENTION] {row.channel.value.upper()} to case {incident.case} could not be "
            f"delivered ({reason}). The victim did not get our message: reach them another "
            f"way (details: !case {incident.case}).",
            f"alert:dead-reply:{row.id}",
            Lane.URGENT if incident.priority is Priority.CRITICAL else Lane.REPLY,
        )
        return [alert] if alert is not None else []

    return notice
