"""Authority is decided by role, never by message text; this module only makes attempts visible.

Suspicious text (claims of authority, instructions to the model) and refused tool calls are
written to the audit log so coordinators can see who tried what."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from typing import Any, Protocol

from bot import reply_guard
from bot.conversation import TurnResult
from bot.llm import BadTurn
from bot.redact import mask_peer
from bot.store import incidents as store
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.tools import ToolOutcome

log = logging.getLogger(__name__)

_CLAIMS = re.compile(
    r"ignore (all |any |the )?(previous|prior|above) (instructions|rules)|system prompt"
    r"|\b(coordinator|responder|admin|administrator|commander)\b|\bapprov"
    r"|dispatch (all|every)|all teams|send all|broadcast to (all|every)|^\s*!\w+"
    r"|phone numbers|\btool_(calls?|result)\b|nirdesh bhul"
    r"|কোঅর্ডিনেটর|সমন্বয়ক|নির্দেশ ভুল|ফোন নম্বর"
    r"|समन्वयक|कोऑर्डिनेटर|निर्देश भूल|फ़ोन नंबर|फोन नंबर"
    r"|کوآرڈینیٹر|رابطہ کار|ہدایات نظر انداز|فون نمبر",
    re.IGNORECASE | re.MULTILINE,
)


def authority_claim(text: str) -> bool:
    return bool(_CLAIMS.search(text))


async def audit_turn(db: Database, row: InboxRow, outcomes: list[ToolOutcome], now: float) -> None:
    refused = [o for o in outcomes if not o.ok]
    claim = authority_claim(row.text)
    if not refused and not claim:
        return
    async with db.transaction() as conn:
        # Both entries are about this message: same actor, case and time.
        audit = functools.partial(
            store.audit, conn, actor=row.peer, incident_id=row.incident_id, now=now
        )
        if claim:
            log.warning(
                "inbox #%d from %s: text claims authority or instructs the model",
                row.id,
                mask_peer(row.peer),
            )
            await audit(
                action="suspected_injection", detail={"inbox": row.id, "role": row.role.value}
            )
        for o in refused:
            error = str(o.result.get("error", ""))[:200]
            await audit(
                action="tool.refused", detail={"inbox": row.id, "tool": o.name, "error": error}
            )


async def audit_reply(db: Database, row: InboxRow, turn: TurnResult | BadTurn, now: float) -> None:
    """What the reply guard did with this message's turn, for the coordinators' audit: replies
    it refused (with the reason), tool calls the model wrote as text, and the protocol passages
    an SMS reply cited (the citations themselves are not sent)."""
    detail: dict[str, object] = {"inbox": row.id, "role": row.role.value}
    if isinstance(turn, BadTurn):
        action, detail["reason"] = "reply.refused", turn.reason[:300]
    else:
        cited = reply_guard.citations(turn.raw_content)
        if not (turn.rejections or turn.text_tool_calls or cited):
            return
        action = "reply.guarded"
        detail.update(refused=turn.rejections, text_tool_calls=turn.text_tool_calls, cited=cited)
    async with db.transaction() as conn:
        await store.audit(
            conn, actor="model", action=action, incident_id=row.incident_id, now=now, detail=detail
        )


class Cited(Protocol):
    """A protocol passage the turn was given (protocols.search.Passage)."""

    @property
    def title(self) -> str: ...
    @property
    def source(self) -> str: ...


RESULT_MAX = 2000  # characters of a tool's result kept in the turn's record


def turn_detail(passages: Sequence[Cited], turn: TurnResult) -> dict[str, Any]:
    """What a model turn was given and did, for the case page's audit trail: the passages, each
    tool call with the backend's decision (its result; refused calls say why), the reply."""
    calls = []
    for o in turn.tool_outcomes:
        result = json.dumps(o.result, default=str, ensure_ascii=False)
        calls.append(
            {
                "name": o.name,
                "arguments": o.arguments,
                "decision": "done" if o.ok else "refused",
                "result": result if len(result) <= RESULT_MAX else result[:RESULT_MAX] + "…",
            }
        )
    return {
        "passages": [{"title": p.title, "source": p.source} for p in passages],
        "tool_calls": calls,
        "reply": turn.content,
        "guard": list(turn.rejections),
    }
