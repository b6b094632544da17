"""Responders and coordinators on Matrix: deterministic `!` commands, and free text to the model
with responder tools. Only coordinators approve, reject, assign or broadcast."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.commands import Command
from bot.conversation import Conversation
from bot.lang import detect_script_lang
from bot.llm import user_message
from bot.models import Channel, Lane, Outbound, Role
from bot.redact import mask_peer
from bot.reply_guard import CORRECTION, ReplyPolicy
from bot.route import Decision
from bot.store import confirmations
from bot.store import incidents as store
from bot.store.inbox import InboxRow
from handlers import authority, dispatch
from handlers.context import Services, TurnContext
from handlers.guard import audit_reply, audit_turn
from handlers.history import conversation_history
from handlers.prompts import STAFF_SYSTEM
from handlers.public_text import inline

if TYPE_CHECKING:
    from bot.region.commands import RegionCommands
    from handlers.broadcasts import Broadcasts

log = logging.getLogger(__name__)

HELP = """\
Lifeline commands:
!incidents [open|unassigned|overdue] - list cases, most urgent first
!case <code> - one case with its dispatches
!approve <code> [team] - approve a dispatch request (coordinators)
!reject <code> <reason> - reject a dispatch request (coordinators)
!assign <code> <team> - assign or reassign a team (coordinators)
!arrived <code> - the team reached the victim's area; the reporter is told
!priority <code> <critical|high|medium|low> - set a case's priority (up or down)
!people <code> <n> - correct a case's head count (up or down)
yes - confirm the case change the assistant asked you about
!resolve <code> [note] - close a case; the reporter is told
!say <code> <text> - relay a message to the reporter on their channel
!teams - teams and whether they are free
!status - queues, modems, model
!advise <area|*> <text> - SMS advisory to subscribers of an area (coordinators)
!broadcast list | cancel <id> | every <min> <area> <text> (coordinators)
Anything else that mentions me goes to the assistant."""

EDIT_NOT_RUN = "Edits are not run as commands; send the command again."
EDIT_NOT_ANSWERED = "Edits are not answered; send the message again."

COORDINATOR_ONLY = frozenset(
    {"approve", "reject", "assign", "advise", "broadcast", "lend", "return", "need"}
)
REGION_COMMANDS = frozenset({"region", "lend", "return", "need"})  # bot/region/commands.py


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command answered; ``refused``: not the sender's authority; ``failed``: it could
    not be carried out (the text says why)."""

    text: str
    refused: bool = False
    failed: bool = False


@dataclass
class ResponderFlow:
    s: Services
    conversation: Conversation[TurnContext]
    status: Callable[[], Awaitable[str]]
    broadcasts: Broadcasts | None = None
    region: RegionCommands | None = None  # [region] configured

    def reply(self, row: InboxRow, text: str, key: str | None = None) -> Outbound:
        return Outbound(
            channel=Channel.MATRIX,
            peer=row.peer,
            conversation=row.conversation,
            text=text,
            idem_key=key or f"reply:{row.id}",
            lane=Lane.REPLY,
        )

    async def command(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        cmd = decision.command
        if cmd is None:
            return []  # a lone "!" is not a command
        return [self.reply(row, (await self.run_command(cmd, row)).text)]

    async def run_command(self, cmd: Command, row: InboxRow) -> CommandOutcome:
        """A staff command by ``row.peer``: the one path for Matrix and the incident board."""
        if cmd.name in COORDINATOR_ONLY and row.role is not Role.COORDINATOR:
            log.warning("refused !%s from non-coordinator %s", cmd.name, row.peer)
            async with self.s.db.transaction() as conn:
                await store.audit(
                    conn,
                    actor=row.peer,
                    action="authority.denied",
                    now=self.s.clock(),
                    detail={"command": cmd.name},
                )
            text = f"Only coordinators can use !{cmd.name}. Ask a coordinator in this room."
            return CommandOutcome(text, refused=True)
        try:
            return CommandOutcome(await self._run(cmd, row))
        except dispatch.DecisionError as exc:
            return CommandOutcome(f"Cannot do that: {exc}", failed=True)

    # A Matrix edit (m.replace) is a new event carrying the whole new text: running it would
    # carry out the command a second time (relay twice, re-broadcast, re-notify).

    async def edit_of_command(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        name = decision.command.name if decision.command is not None else "?"
        log.info(
            "edit %s of a !%s command from %s not run", row.dedup_key, name, mask_peer(row.peer)
        )
        return [self.reply(row, EDIT_NOT_RUN)]

    async def edit(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        return [self.reply(row, EDIT_NOT_ANSWERED)]

    async def _run(self, cmd: Command, row: InboxRow) -> str:
        a, actor = cmd.args, row.peer
        ref = f"cmd:{row.id}"  # the command's own row: a replay after a crash reuses it
        match cmd.name:
            case "help" | "h":
                return HELP if self.region is None else f"{HELP}\n{self.region.help}"
            case "incidents" | "cases":
                return await self._list(a[0] if a else "open")
            case "case" if a:
                return await self._case(a[0])
            case "approve" if a:
                team = a[1] if len(a) > 1 else None
                return await dispatch.approve(self.s, a[0], team, actor, ref=ref)
            case "reject" if len(a) >= 2:
                return await dispatch.reject(self.s, a[0], cmd.rest.split(None, 1)[1], actor)
            case "assign" if len(a) >= 2:
                return await dispatch.assign(self.s, a[0], a[1], actor, ref=ref)
            case "arrived" if a:
                return await dispatch.arrived(self.s, a[0], actor, ref=ref)
            case "priority" if len(a) >= 2:
                return await dispatch.set_priority(self.s, a[0], a[1], actor)
            case "people" if len(a) >= 2:
                return await dispatch.set_people(self.s, a[0], a[1], actor)
            case "yes" | "confirm":
                return await authority.answer_yes(self.s, row)
            case "resolve" if a:
                note = cmd.rest.split(None, 1)[1] if len(a) > 1 else ""
                return await dispatch.resolve(self.s, a[0], note, actor)
            case "say" if len(a) >= 2:
                return await self._relay(a[0], cmd.rest.split(None, 1)[1], row)
            case "teams":
                return await self._teams()
            case "status":
                return await self.status()
            case "advise" | "broadcast" if self.broadcasts is not None:
                return await self.broadcasts.command(cmd.name, cmd.args, cmd.rest, actor)
            case name if name in REGION_COMMANDS and self.region is not None:
                return await self.region.run(cmd)
            case _:
                return f"Unknown or incomplete command !{cmd.name}. Send !help for the list."

    async def _list(self, which: str) -> str:
        if which not in ("open", "unassigned", "overdue"):
            return "Use !incidents open | unassigned | overdue"
        views = await dispatch.select_cases(self.s, which)
        if not views:
            return f"No {which} cases."
        now = self.s.clock()
        lines = [f"{len(views)} {which} case(s):"]
        for v in views[:25]:
            i = v.incident
            teams = ",".join(f"{d.team_id or '-'}:{d.status}" for d in v.dispatches) or "none"
            where = inline(i.location, 60) or "?"
            lines.append(
                f"{i.case} {i.priority.label.upper()} {i.status} | {where} | "
                f"{i.people_count or '?'}p | {int((now - i.created_at) // 60)}m | {teams}"
            )
        if len(views) > 25:
            lines.append(f"… and {len(views) - 25} more (lifeline incidents)")
        return "\n".join(lines)

    async def _case(self, code: str) -> str:
        incident = await store.by_case(self.s.db, code)
        if incident is None:
            return f"No case {code.upper()}."
        ds = await store.dispatches_for(self.s.db, incident.id)
        # alert_text already says "where:"; only the GPS fix is added, on its own line.
        gps = (
            f"GPS: {incident.lat:.5f},{incident.lon:.5f}\n"
            if incident.lat is not None and incident.lon is not None
            else ""
        )
        return (
            f"{dispatch.alert_text(incident, incident.status, self.s.clock())}\n{gps}dispatches: "
            + (", ".join(f"#{d.id} {d.team_id or '-'} {d.status}" for d in ds) or "none")
        )

    async def _teams(self) -> str:
        teams = await store.list_teams(self.s.db)
        if not teams:
            return "No teams configured ([[teams]] in the config)."
        # Teams only go offline by leaving the config (bot.store.incidents.sync_teams).
        return "\n".join(
            f"{t.id} {t.kind} @{t.base or '?'} cap {t.capacity}: {t.status}"
            + (" (not in the config)" if t.status == "offline" else "")
            for t in teams
        )

    async def _relay(self, code: str, text: str, row: InboxRow) -> str:
        incident = await store.by_case(self.s.db, code)
        if incident is None:
            return f"No case {code.upper()}."
        now = self.s.clock()
        async with self.s.db.transaction() as conn:
            shortened = await dispatch.tell_victim(
                conn, self.s, incident, "relay", f"relay:{row.id}", now, note=text
            )
            await store.audit(
                conn,
                actor=row.peer,
                action="relay",
                incident_id=incident.id,
                now=now,
                detail={"chars": len(text), "shortened": shortened},
            )
        done = f"Relayed to the reporter of {incident.case} ({incident.channel.value})"
        if shortened:
            budget = self.s.settings.sms.segment_budget
            return (
                f"{done}, SHORTENED to fit {budget} SMS: the end of your text was cut. "
                f"Send the rest with another !say {incident.case} …"
            )
        return done + "."

    async def yes(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        """A bare "yes": answered only when this person has a change waiting (others' chatter
        saying "yes" is left alone)."""
        async with self.s.db.transaction() as conn:
            pending = await confirmations.get(conn, row.peer, row.conversation)
        if pending is None:
            # In a direct chat every message gets an answer; in a room it is just chatter.
            direct = bool(row.facts.is_direct)
            return [self.reply(row, "Nothing is waiting for your confirmation.")] if direct else []
        return [self.reply(row, await authority.answer_yes(self.s, row))]

    async def model_turn(self, row: InboxRow, decision: Decision) -> list[Outbound]:
        history = await conversation_history(
            self.s.db, row, limit=self.s.settings.model.history_messages
        )
        # Staff replies pass the same reply guard as victims' (in the staff's own script).
        lang = detect_script_lang(row.text)
        policy = ReplyPolicy.build(
            lang=lang,
            lang_name="English" if lang == "en" else "the language of the message",
            instructions=(STAFF_SYSTEM, CORRECTION),
            known=(row.text, *(str(m.get("content") or "") for m in history)),
        )
        turn = await self.conversation.run(
            system=STAFF_SYSTEM,
            history=history,
            user=user_message(f"{row.peer} ({row.role.value}): {row.text}"),
            role=row.role,
            ctx=TurnContext(self.s, row, row.role, None),
            policy=policy,
            num_predict=self.s.settings.model.staff_reply_tokens,
        )
        await audit_turn(self.s.db, row, turn.tool_outcomes, self.s.clock())
        await audit_reply(self.s.db, row, turn, self.s.clock())
        text = turn.content
        # The bot, not the model, shows the exact change waiting for this person's "yes".
        asked = await authority.pending_question(self.s, row)
        if asked:
            text = f"{text}\n\n{asked}"
        return [self.reply(row, text)]
