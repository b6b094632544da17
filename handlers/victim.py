"""Public senders (SMS, Matrix DMs): attach to their case and auto-ack at intake; then a model
turn with victim tools; a degraded reply from the protocol library whenever the model fails."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot import sms_text
from bot.conversation import Conversation, TurnResult
from bot.headcount import people_count
from bot.intake import Accepted
from bot.llm import BadTurn, ChatModel, user_message
from bot.media import MediaError, PreparedAudio, PreparedImage, prepare_attachment
from bot.models import Channel, Facts, Incident, Lane, Outbound, Priority, Role
from bot.queue import CircuitOpen
from bot.reply_guard import CORRECTION, ReplyPolicy
from bot.store import inbox, model_turns, outbox
from bot.store import incidents as store
from bot.store.inbox import InboxRow
from handlers.context import Services, TurnContext
from handlers.dispatch import alert_text
from handlers.guard import Cited, audit_reply, audit_turn, turn_detail
from handlers.history import PUBLIC_WRAPPER, conversation_history, public_text
from handlers.prompts import VICTIM_CONTEXT, VICTIM_SYSTEM, victim_context
from handlers.replies import reply_to, shape
from handlers.texts import ack_key, say

if TYPE_CHECKING:
    from protocols.search import ProtocolSearch

log = logging.getLogger(__name__)

# Script detection cannot tell English from romanised Bengali/Hindi/Urdu ("pani barche"): say so.
LANG_NAMES = {
    "en": "Latin script: English, or Bengali/Hindi/Urdu in Latin letters; answer the same way",
    "bn": "Bengali",
    "hi": "Hindi",
    "ur": "Urdu",
}

# The script a reply must be written in, as the corrective re-prompt names it.
SCRIPT_NAMES = {
    "en": "the sender's language in Latin letters",
    "bn": "Bengali",
    "hi": "Hindi",
    "ur": "Urdu",
}


@dataclass
class PreparedMedia:
    images_b64: list[str] = field(default_factory=list)
    described: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # told to the sender
    kept_for_staff: list[str] = field(default_factory=list)  # media the model cannot take
    gps: tuple[float, float] | None = None


class VictimFlow:
    def __init__(
        self,
        services: Services,
        llm: ChatModel,
        conversation: Conversation[TurnContext],
        protocols: ProtocolSearch | None,
    ) -> None:
        self.s = services
        self.llm = llm
        self.conversation = conversation
        self.protocols = protocols

    # ---- intake: inside the inbox transaction, no I/O beyond SQLite ---------------------------

    async def on_intake(self, conn: aiosqlite.Connection, item: Accepted, now: float) -> None:
        if item.decision.role is not Role.PUBLIC or item.decision.route == "fast":
            return
        msg, verdict = item.msg, item.triage
        incident = await store.open_for_reporter(conn, msg.channel, msg.peer)
        new_case = incident is None
        if incident is None:
            incident = await store.create(
                conn,
                channel=msg.channel,
                reporter=msg.peer,
                conversation=msg.conversation,
                priority=verdict.priority,
                lang=verdict.lang,
                summary=msg.text or "(media)",
                now=now,
                people_count=people_count(msg.text),
            )
        else:
            await store.escalate(conn, incident.id, verdict.priority, now)
            if not incident.people_count and (count := people_count(msg.text)):
                await store.update(conn, incident.id, now, people_count=count)
        await inbox.set_incident(conn, item.inbox_id, incident.id)
        if msg.facts.lat is not None and msg.facts.lon is not None:
            await store.update(conn, incident.id, now, lat=msg.facts.lat, lon=msg.facts.lon)
        escalated = verdict.priority < incident.priority
        fresh = await store.get(conn, incident.id)
        assert fresh is not None
        window = self.s.settings.queue.ack_repeat_after_s
        # A flooding sender's message, or a repeat merged into a waiting one, is attached to the
        # case but gets no ack of its own (an escalation still alerts the coordinators below).
        if item.decision.route not in ("throttled", "merged") and (
            new_case or escalated or await ack_due(conn, incident.id, now, window)
        ):
            # A bare "HELP" asks where and who; a question is not told rescue is coming.
            template = ack_key(verdict.priority, bare_plea=_bare_plea(msg.text, verdict.reasons))
            text = self._shape(msg.channel, say(template, verdict.lang, case=fresh.case))
            # this message's own priority, like its reply: a routine "ok" in a critical case
            # must not use up the sender's LIFE share (bot/store/outbox.py)
            lane = Lane.LIFE if verdict.priority is Priority.CRITICAL else Lane.URGENT
            ack = reply_to(msg, text, f"ack:{item.inbox_id}", lane, _modem(msg.facts))
            await outbox.enqueue(conn, ack, now=now, inbox_id=item.inbox_id, incident_id=fresh.id)
            await store.update(conn, fresh.id, now, last_ack_at=now)
        if msg.facts.partial and item.decision.route not in ("throttled", "merged"):
            # Parts of a long SMS never came (the phone died?): what arrived is handled, and the
            # sender learns that something may be missing.
            text = self._shape(msg.channel, say("partial_sms", verdict.lang, case=fresh.case))
            missing = reply_to(
                msg, text, f"partial:{item.inbox_id}", Lane.URGENT, _modem(msg.facts)
            )
            await outbox.enqueue(
                conn, missing, now=now, inbox_id=item.inbox_id, incident_id=fresh.id
            )
        if (new_case or escalated) and fresh.priority <= Priority.HIGH:
            alert = self.s.notifier.to_coordinators(
                alert_text(fresh, "new case" if new_case else "escalated", now),
                f"alert:case:{fresh.id}:{fresh.priority.label}",
                Lane.URGENT if fresh.priority is Priority.CRITICAL else Lane.REPLY,
            )
            if alert is not None:
                await outbox.enqueue(conn, alert, now=now, incident_id=fresh.id)

    # ---- model turn ---------------------------------------------------------------------------

    async def handle(self, row: InboxRow) -> list[Outbound]:
        incident = await self._incident(row)
        media = await self._prepare_media(row, incident)
        query = row.text or " ".join(media.described)
        protocols_text = "(library unavailable)"
        passages: Sequence[Cited] = ()  # what the turn is given, for the case's audit trail
        if self.protocols is not None:
            protocols_text, passages = await self.protocols.prompt_context(
                query, row.lang, self.s.settings.protocols.prompt_token_budget
            )
        dispatches = await store.dispatches_for(self.s.db, incident.id)
        context = victim_context(
            incident,
            dispatches,
            LANG_NAMES.get(row.lang, "the sender's language"),
            protocols_text,
        )
        text = public_text(row.text)
        if media.described:
            text += "\nAttached, in this order: " + "; ".join(media.described) + "."
        history = await conversation_history(
            self.s.db, row, limit=self.s.settings.model.history_messages
        )
        policy = victim_policy(
            row.lang,
            protocols_text,
            self.s.settings.sms.segment_budget,
            row.text,
            incident.case,
            incident.location,
            incident.needs,
        )
        turn = await self.conversation.run(
            system=VICTIM_SYSTEM,
            history=history,
            user=user_message(text, media.images_b64),
            context=context,
            role=Role.PUBLIC,
            ctx=TurnContext(self.s, row, Role.PUBLIC, incident.id),
            policy=policy,
            num_predict=self.s.settings.model.reply_tokens,
        )
        await self._record_turn(
            row, turn.seconds, turn.prompt_tokens, None, guard=turn, passages=passages
        )
        await audit_turn(self.s.db, row, turn.tool_outcomes, self.s.clock())
        await audit_reply(self.s.db, row, turn, self.s.clock())
        reply = turn.content
        if media.notes:
            reply = reply + "\n" + " ".join(media.notes)
        return [self._reply(row, incident, reply, f"reply:{row.id}")]

    async def degraded(self, row: InboxRow, exc: BaseException) -> list[Outbound]:
        """The model failed: the sender still gets the library's advice, once per message."""
        if not isinstance(exc, CircuitOpen):
            await self._record_turn(row, 0.0, None, f"{type(exc).__name__}: {exc}")
        if isinstance(exc, BadTurn):
            await audit_reply(self.s.db, row, exc, self.s.clock())
        if row.role is not Role.PUBLIC or row.incident_id is None:
            return []
        incident = await self._incident(row)
        advice = say("generic_safety", row.lang)
        if self.protocols is not None:
            advice, _ = await self.protocols.degraded_reply(row.text, row.lang)
        intro = say("fallback_intro", row.lang, case=incident.case)
        text = f"{intro} {advice}"
        if row.channel is Channel.SMS and not self._fits_sms(text) and self._fits_sms(advice):
            # The library's summaries fill the budget on their own (tests/test_library.py) and
            # their last lines are "do not" lines: drop the intro (the ack gave the case code),
            # never the advice.
            text = advice
        return [self._reply(row, incident, text, f"fallback:{row.id}", suffix="")]

    async def dead(self, row: InboxRow, reason: str) -> list[Outbound]:
        """Given up: the sender still gets the library advice (same key: never twice) and the
        coordinators are asked to answer by hand — never silence."""
        outs = await self.degraded(row, RuntimeError(reason))
        text = (
            f"[ATTENTION] message #{row.id} from {row.channel.value} could not be processed "
            f"({reason[:120]}). Please handle it by hand: lifeline messages"
        )
        if row.needs_model and row.role is Role.PUBLIC and row.incident_id is not None:
            case = (await self._incident(row)).case
            text = (
                f"[ATTENTION] the model could not answer {case} (message #{row.id}, "
                f"{row.attempts} tries: {reason[:120]}). The sender got the library advice; "
                f"please reply by hand: !say {case} <text>"
            )
        elif row.needs_model and row.role is not Role.PUBLIC and row.channel is Channel.MATRIX:
            sorry = (
                "The assistant could not answer this message. Ask again in other words, or use "
                "the commands (!help)."
            )
            outs.append(reply_to(row, sorry, f"reply:{row.id}"))
        alert = self.s.notifier.to_coordinators(text, f"alert:dead:{row.id}")
        return outs + ([alert] if alert else [])

    # ---- helpers ------------------------------------------------------------------------------

    async def _incident(self, row: InboxRow) -> Incident:
        if row.incident_id is None:
            raise RuntimeError(f"inbox #{row.id} has no case")
        async with self.s.db.transaction() as conn:
            incident = await store.get(conn, row.incident_id)
        if incident is None:
            raise RuntimeError(f"case of inbox #{row.id} vanished")
        return incident

    def _fits_sms(self, text: str) -> bool:
        plain = sms_text.gsm_fold(sms_text.to_plain(text))
        return sms_text.segments(plain) <= self.s.settings.sms.segment_budget

    def _shape(self, channel: Channel, text: str, suffix: str = "") -> str:
        return shape(channel, text, self.s.settings.sms.segment_budget, suffix)

    def _reply(
        self, row: InboxRow, incident: Incident, text: str, key: str, suffix: str | None = None
    ) -> Outbound:
        shaped = self._shape(row.channel, text, suffix or "")
        if suffix is None and incident.case not in shaped:
            # Tag the case code unless the shaped text still shows it (a trim may cut it off).
            shaped = self._shape(row.channel, text, f" [{incident.case}]")
        lane = Lane.LIFE if row.priority is Priority.CRITICAL else Lane.REPLY
        return reply_to(row, shaped, key, lane, _modem(row.facts))

    async def _prepare_media(self, row: InboxRow, incident: Incident) -> PreparedMedia:
        out = PreparedMedia()
        settings = self.s.settings.media
        caps = self.llm.health.capabilities
        transport_error = row.facts.media_error
        if transport_error:
            limit_mb = self.s.settings.matrix.max_media_bytes // (1024 * 1024)
            note = (
                f"Your file is too large (limit {limit_mb} MB)."
                if transport_error == "too_large"
                else "We could not download your file."
            )
            out.notes.append(say("media_error", row.lang, case=incident.case, note=note))
            out.described.append(
                f"a file the sender tried to send could not be used ({transport_error})"
            )
        for i, att in enumerate(row.attachments[: settings.max_attachments], start=1):
            try:
                data = await asyncio.to_thread(Path(att.path).read_bytes)
                prepared = await asyncio.to_thread(
                    prepare_attachment,
                    data,
                    att.mimetype,
                    max_audio_seconds=settings.max_audio_s,
                    max_bytes=settings.max_bytes,
                )
            except MediaError as exc:
                out.notes.append(
                    say("media_error", row.lang, case=incident.case, note=exc.user_message)
                )
                continue
            except OSError as exc:
                log.error("attachment %d of inbox #%d unreadable: %s", i, row.id, exc)
                continue
            if isinstance(prepared, PreparedImage):
                # The stored copy is the stripped one: no EXIF/GPS left on disk.
                await asyncio.to_thread(Path(att.path).write_bytes, prepared.jpeg)
            needed = "audio" if isinstance(prepared, PreparedAudio) else "vision"
            if caps and needed not in caps:
                what = "Voice notes" if needed == "audio" else "Photos"
                note = f"{what} cannot be used here right now; a coordinator will check it."
                out.notes.append(say("media_error", row.lang, case=incident.case, note=note))
                out.kept_for_staff.append(att.path)
                continue
            if isinstance(prepared, PreparedAudio):
                out.images_b64 += [base64.b64encode(c.wav).decode() for c in prepared.clips]
                out.described.append(
                    f"voice note {i}: {len(prepared.clips)} audio clip(s), "
                    f"{prepared.seconds:.0f} s in total"
                )
                if prepared.truncated:
                    out.notes.append(say("audio_cut", row.lang, note=int(prepared.seconds)))
            else:
                out.images_b64.append(base64.b64encode(prepared.jpeg).decode())
                out.described.append(f"photo {i} ({prepared.width}x{prepared.height})")
                if prepared.gps and incident.lat is None:
                    out.gps = prepared.gps
        if len(row.attachments) > settings.max_attachments:
            out.notes.append(f"(only the first {settings.max_attachments} attachments were used)")
        if out.kept_for_staff:
            alert = self.s.notifier.to_coordinators(
                f"{incident.case}: media the model cannot process is kept for you: "
                + ", ".join(out.kept_for_staff),
                f"alert:media:{row.id}",
            )
            if alert is not None:
                async with self.s.db.transaction() as conn:
                    await outbox.enqueue(conn, alert, now=self.s.clock(), incident_id=incident.id)
        if out.gps is not None:
            async with self.s.db.transaction() as conn:
                await store.update(
                    conn, incident.id, self.s.clock(), lat=out.gps[0], lon=out.gps[1]
                )
                await store.audit(
                    conn,
                    actor="media",
                    action="incident.gps_from_photo",
                    incident_id=incident.id,
                    now=self.s.clock(),
                    detail={"lat": out.gps[0], "lon": out.gps[1]},
                )
        return out

    async def _record_turn(
        self,
        row: InboxRow,
        seconds: float,
        prompt_tokens: int | None,
        error: str | None,
        guard: TurnResult | None = None,
        passages: Sequence[Cited] = (),
    ) -> None:
        ok = error is None
        if guard is not None and guard.rejections:  # answered after a corrective re-prompt
            error = "reply guard (re-prompted): " + "; ".join(guard.rejections)
        await model_turns.record(
            self.s.db,
            inbox_id=row.id,
            at=self.s.clock(),
            ok=ok,
            seconds=seconds,
            prompt_tokens=prompt_tokens,
            error=error,
            detail=None if guard is None else turn_detail(passages, guard),
        )


def victim_policy(
    lang: str, protocols_text: str, segment_budget: int, *known: str | None
) -> ReplyPolicy:
    """What a reply to a member of the public must look like (bot.reply_guard)."""
    return ReplyPolicy.build(
        lang=lang,
        lang_name=SCRIPT_NAMES.get(lang, "the sender's language"),
        # What the model must not repeat: its instructions and the prompt's scaffolding, not
        # the protocol passages it is asked to quote.
        instructions=(
            VICTIM_SYSTEM,
            VICTIM_CONTEXT,
            PUBLIC_WRAPPER,
            CORRECTION,
            *(ln for ln in protocols_text.splitlines() if ln.startswith(("[P", "Safety "))),
        ),
        known=(protocols_text, *known),
        max_segments=segment_budget,
        strip_citations=True,  # [P1] means nothing to a victim; the audit keeps it
    )


async def ack_due(conn: aiosqlite.Connection, incident_id: int, now: float, window: float) -> bool:
    """One ack per case per window: a panicking sender's repeats merge into the case quietly."""
    last = await store.last_ack_at(conn, incident_id)
    return last is None or now - last >= window


def _modem(facts: Facts) -> dict[str, Any]:
    """The modem the sender wrote to, so the answer leaves on the line they know."""
    return {"modem": facts.modem}


def _bare_plea(text: str, reasons: tuple[str, ...]) -> bool:
    return set(reasons) == {"plea"} and len(text.split()) <= 3
