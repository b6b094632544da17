"""Fast path for public senders: SMS keywords (JOIN/STOP/HELP/STATUS in four languages) and
messages that cannot be read (binary, empty, undecryptable). No model involved."""

from __future__ import annotations

import logging

from bot import sms_text
from bot.models import Channel, Lane, Outbound
from bot.store import incidents as store
from bot.store import subscriptions
from bot.store.inbox import InboxRow
from bot.triage import triage
from handlers.context import Services
from handlers.texts import say

log = logging.getLogger(__name__)


class PublicCommands:
    def __init__(self, services: Services) -> None:
        self.s = services

    def _reply(self, row: InboxRow, text: str) -> Outbound:
        if row.channel is Channel.SMS:
            text = sms_text.fit(text, self.s.settings.sms.segment_budget)
        return Outbound(
            channel=row.channel,
            peer=row.peer,
            conversation=row.conversation,
            text=text,
            idem_key=f"reply:{row.id}",
            lane=Lane.URGENT,
            meta={"modem": row.meta.get("modem")},
        )

    async def handle(self, row: InboxRow) -> list[Outbound]:
        lang = row.lang
        if row.meta.get("binary"):
            log.warning("inbox #%d: binary/data SMS answered with a plain-text request", row.id)
            return [self._reply(row, say("binary_sms", lang))]
        if row.meta.get("undecryptable"):
            return [self._reply(row, say("undecryptable", lang))]
        if row.meta.get("empty"):
            return [self._reply(row, say("empty_sms", lang))]
        verdict = triage(row.text)
        if verdict.keyword is None:
            return []  # e.g. a stranger chatting in a group room: recorded, nothing to do
        command, argument = verdict.keyword.value, verdict.argument
        now = self.s.clock()
        async with self.s.db.transaction() as conn:
            if command == "stop":
                cancelled = await subscriptions.stop(conn, row.channel, row.peer, now)
                log.info(
                    "inbox #%d: STOP honoured, %d queued advisories cancelled", row.id, cancelled
                )
                return [self._reply(row, say("stopped", lang))]
            if command == "join":
                if not argument:
                    return [self._reply(row, say("help", lang))]
                await subscriptions.join(
                    conn, row.channel, row.peer, argument, lang, now, row.conversation
                )
                return [self._reply(row, say("joined", lang, area=argument))]
            if command == "status":
                incident = await store.open_for_reporter(conn, row.channel, row.peer)
                if incident is None:
                    return [self._reply(row, say("no_case", lang))]
                ds = await store.dispatches_for(conn, incident.id)
                state = incident.status + "".join(
                    f", team {d.team_id} {d.status}" for d in ds if d.team_id
                )
                return [self._reply(row, say("status", lang, case=incident.case, note=state))]
        return [self._reply(row, say("help", lang))]
