"""Actions on a case (POST /api/cases/{code}/{action}): carried out by the very handler a
``!command`` in the coordination room runs (handlers/responder.ResponderFlow.run_command), with
the Command the parser builds from the same text, the same authority rules, the same audit
entry and the same notice to the reporter; the coordination room hears "… by @amina via the
board".

Each action is stored as a command row first (bot/store/board.record_command), held as being
processed: should the gateway stop half-way, recovery queues it and the command worker finishes
it, with the same notice keys, so the reporter still hears it exactly once."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from aiohttp import web

from bot.board.api import ACTIONS
from bot.board.jsonout import error, response
from bot.board.keys import ROLE, SESSION, board_of
from bot.commands import parse_command
from bot.errors import UserError
from bot.models import Channel, Facts, Inbound
from bot.redact import mask_peer
from bot.route import Decision, Handler, Route
from bot.store import board as store
from bot.store import inbox, incidents, outbox

log = logging.getLogger(__name__)

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_TEAM = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
TEXT_MAX = 1000


class BadAction(UserError):
    """The request cannot become a command (missing or malformed field)."""


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/api/cases/{code}/{action}", act)


def _field(
    body: dict[str, Any], name: str, *, required: bool, pattern: re.Pattern[str] | None = None
) -> str:
    value = body.get(name)
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise BadAction(f"{name} is required")
    if text and pattern is not None and not pattern.fullmatch(text):
        raise BadAction(f"{name} is not valid")
    if len(text) > TEXT_MAX:
        raise BadAction(f"{name} is longer than {TEXT_MAX} characters")
    return text


def command_text(action: str, code: str, body: dict[str, Any]) -> str:
    """The ``!command`` a coordinator would type for this action."""
    match action:
        case "approve":
            team = _field(body, "team", required=False, pattern=_TEAM)
            return f"!approve {code} {team}".rstrip()
        case "assign":
            return f"!assign {code} {_field(body, 'team', required=True, pattern=_TEAM)}"
        case "reject":
            return f"!reject {code} {_field(body, 'reason', required=True)}"
        case "arrived":
            return f"!arrived {code}"
        case "resolve":
            return f"!resolve {code} {_field(body, 'note', required=False)}".rstrip()
        case "say":
            return f"!say {code} {_field(body, 'text', required=True)}"
    raise BadAction(f"unknown action {action}")


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        raise BadAction("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadAction("the body is a JSON object")
    return body


async def act(request: web.Request) -> web.Response:
    board = board_of(request)
    session, role = request[SESSION], request[ROLE]
    code, action = request.match_info["code"], request.match_info["action"]
    if action not in ACTIONS:
        return error(404, f"unknown action {action}; one of {', '.join(ACTIONS)}")
    if not _CODE.fullmatch(code):
        return error(404, "no such case")
    try:
        text = command_text(action, code, await _body(request))
    except BadAction as exc:
        return error(400, exc.reason)
    incident = await incidents.by_case(board.db, code)
    if incident is None:
        return error(404, f"no case {code.upper()}")
    cmd = parse_command(text)
    assert cmd is not None and cmd.name == action
    services = board.services
    now = services.clock()
    room = services.notifier.coordination_room
    msg = Inbound(
        channel=Channel.MATRIX,
        peer=session.user,
        conversation=room or f"board:{session.user}",
        text=text,
        dedup_key=f"board:{uuid.uuid4().hex}",
        received_at=now,
        meta={"via": "board"},
        facts=Facts(is_direct=False, msgtype="m.text"),
    )
    decision = Decision(Route.FAST, "board", Handler.COMMAND, role, command=cmd)
    inbox_id = await store.record_command(board.db, msg, role, decision, now)
    row = await inbox.get(board.db, inbox_id)
    assert row is not None
    try:
        outcome = await board.responder.run_command(cmd, row)
    except Exception as exc:
        async with board.db.transaction() as conn:
            await inbox.dead_letter(
                conn, inbox_id, reason=f"{type(exc).__name__}: {exc}", now=services.clock()
            )
        log.exception("board: !%s on %s by %s failed", action, incident.case, session.user)
        return error(500, "the action failed; see the gateway log")
    done = not (outcome.refused or outcome.failed)
    notice = (
        services.notifier.to_coordinators(
            f"{outcome.text} — by {session.user} via the board", f"reply:{inbox_id}"
        )
        if done
        else None
    )
    async with board.db.transaction() as conn:
        if notice is not None:
            await outbox.enqueue(
                conn, notice, now=services.clock(), inbox_id=inbox_id, incident_id=incident.id
            )
        await inbox.complete(conn, inbox_id, services.clock())
    board.on_enqueued()
    log.info(
        "board: !%s %s by %s (%s): %s",
        action,
        incident.case,
        mask_peer(session.user),
        role.value,
        "done" if done else "refused" if outcome.refused else "not possible",
    )
    if outcome.refused:
        return error(403, outcome.text)
    if outcome.failed:
        return error(400, outcome.text)
    return response({"ok": True, "message": outcome.text})
