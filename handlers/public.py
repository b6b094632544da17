"""Fast path for public senders: SMS keywords (JOIN/STOP/HELP/STATUS in four languages) and
messages that cannot be read (binary, empty, undecryptable). No model involved."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot import sms_text
from bot.models import Channel, Dispatch, Lane, Outbound
from bot.route import Decision
from bot.store import incidents as store
from bot.store import subscriptions
from bot.store.inbox import InboxRow
from bot.triage import Keyword
from handlers.context import Services
from handlers.replies import reply_to
from handlers.texts import say

log = logging.getLogger(__name__)


class PublicCommands:
    def __init__(self, services: Services) -> None:
        self.s = services

    def _reply(self, row: InboxRow, text: str) -> Outbound:
        if row.channel is Channel.SMS:
            text = sms_text.fit(text, self.s.settings.sms.segment_budget)
        return reply_to(row, text, f"reply:{row.id}", Lane.URGENT, {"modem": row.facts.modem})

    async def _lang(self, row: InboxRow) -> str:
        # "STATUS" typed in Latin letters by someone who wrote to us in Bengali: answer in Bengali.
        return row.lang if row.lang != "en" else await self._known_lang(row)

    async def unreadable(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        """Binary (data) SMS, an empty SMS, an undecryptable Matrix event: ask for plain text."""
        lang = await self._lang(row)
        if row.facts.binary:
            log.warning("inbox #%d: binary/data SMS answered with a plain-text request", row.id)
            return [self._reply(row, say("binary_sms", lang))]
        if row.facts.undecryptable:
            return [self._reply(row, say("undecryptable", lang))]
        return [self._reply(row, say("empty_sms", lang))]

    async def keyword(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        """JOIN / STOP / HELP / STATUS, as intake found it (decision.keyword, .command.rest)."""
        lang = await self._lang(row)
        keyword = decision.keyword
        argument = decision.command.rest if decision.command is not None else ""
        now = self.s.clock()
        async with self.s.db.transaction() as conn:
            if keyword is Keyword.STOP:
                cancelled = await subscriptions.stop(conn, row.channel, row.peer, now)
                log.info(
                    "inbox #%d: STOP honoured, %d queued advisories cancelled", row.id, cancelled
                )
                return [self._reply(row, say("stopped", lang))]
            if keyword is Keyword.JOIN:
                if not argument:
                    return [self._reply(row, say("help", lang))]
                await subscriptions.join(
                    conn, row.channel, row.peer, argument, lang, now, row.conversation
                )
                return [self._reply(row, say("joined", lang, area=argument))]
            if keyword is Keyword.STATUS:
                incident = await store.open_for_reporter(conn, row.channel, row.peer)
                if incident is None:
                    return [self._reply(row, say("no_case", lang))]
                ds = await store.dispatches_for(conn, incident.id)
                return [self._reply(row, status_text(incident.case, ds, lang))]
        return [self._reply(row, say("help", lang))]

    async def _known_lang(self, row: InboxRow) -> str:
        """The language of the sender's open case, else of their subscription, else English."""
        async with self.s.db.transaction() as conn:
            incident = await store.open_for_reporter(conn, row.channel, row.peer)
        if incident is not None:
            return incident.lang
        langs = await subscriptions.langs_of(self.s.db, row.channel, row.peer)
        return next((lang for lang in langs if lang != "en"), "en")


def status_text(case: str, dispatches: Sequence[Dispatch], lang: str) -> str:
    """What a victim's STATUS means to them, from the most advanced live dispatch."""
    live = [d for d in dispatches if d.status in store.ACTIVE_DISPATCH]
    with_team = [d for d in live if d.team_id]
    arrived = next((d for d in with_team if d.status == "arrived"), None)
    if arrived is not None:
        return say("status_arrived", lang, case=case, team=arrived.team_id)
    if with_team:
        return say("status_team", lang, case=case, team=with_team[0].team_id)
    if any(d.status == "approved" for d in live):
        return say("status_approved", lang, case=case)
    if live:
        return say("status_requested", lang, case=case)
    return say("status_received", lang, case=case)
