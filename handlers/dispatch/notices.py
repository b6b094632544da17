"""Dispatch notices: the coordinators' alert for a case, and the reporter's notice of every
decision, shaped for their channel and queued in the decision's own transaction."""

from __future__ import annotations

import re
from typing import Any

import aiosqlite

from bot import sms_text
from bot.models import Channel, Incident, Lane
from bot.store import inbox, outbox
from handlers.context import Services
from handlers.public_text import inline, quoted
from handlers.replies import reply_to
from handlers.texts import finish_note, say


def alert_text(incident: Incident, headline: str, now: float) -> str:
    """The reporter's words are quoted ("> " on every line) and the one-line fields are kept on
    one line, so nothing a victim wrote can appear as a line of its own, like a command."""
    age_min = max(0, int((now - incident.created_at) // 60))
    return (
        f"[{incident.priority.label.upper()}] {incident.case} {headline}\n"
        f"where: {inline(incident.location) or '?'} | people: {incident.people_count or '?'} | "
        f"needs: {inline(incident.needs) or '?'}\n"
        f"{quoted(incident.summary)}\nvia {incident.channel.value}, {age_min} min ago"
    )


def victim_text(
    services: Services, incident: Incident, template: str, **values: object
) -> tuple[str, bool]:
    """A notice in the reporter's language, shaped for their channel; True when it was cut.

    On SMS it is plain text, GSM-7 where possible (curly quotes and dashes folded), within
    ``sms.segment_budget``; a coordinator's ``note`` (the free text inside the template) is what
    gets cut, so the case code before it and the template's closing words after it survive."""
    note = finish_note(template, incident.lang, str(values.pop("note", "")))
    if incident.channel is not Channel.SMS:
        text = say(template, incident.lang, case=incident.case, note=note, **values)
        return re.sub(r" {2,}", " ", text).strip(), False  # an empty note leaves two spaces
    marker = "\x00"
    rendered = say(template, incident.lang, case=incident.case, note=marker, **values)
    head, _, tail = rendered.partition(marker)
    tail = sms_text.gsm_fold(sms_text.to_plain(tail))
    if tail and tail[0] not in ".,;:!?)।۔":
        tail = " " + tail
    fitted = sms_text.fit(head + note, services.settings.sms.segment_budget, suffix=tail)
    return fitted, fitted != sms_text.gsm_fold(sms_text.to_plain(head + note)) + tail


async def tell_victim(
    conn: aiosqlite.Connection,
    services: Services,
    incident: Incident,
    template: str,
    key: str,
    now: float,
    lane: Lane = Lane.URGENT,
    **values: object,
) -> bool:
    """Close the loop: the reporter hears every decision on their own channel, in the same
    transaction as the decision. SMS goes out on the modem they last wrote to, when known
    (their operator reached it; a reply from the same number reads as the same conversation).
    Returns True when the text had to be shortened to fit the reporter's SMS budget."""
    text, shortened = victim_text(services, incident, template, **values)
    meta: dict[str, Any] = {}
    if incident.channel is Channel.SMS:
        modem = await inbox.last_modem(conn, Channel.SMS, incident.reporter)
        if modem:
            meta["modem"] = modem
    out = reply_to(incident, text, key, lane, meta=meta)
    await outbox.enqueue(conn, out, now=now, incident_id=incident.id)
    return shortened
