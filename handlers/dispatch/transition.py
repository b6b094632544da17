"""The one shape of a person's decision on a case: load the case, check it is still open inside
the decision's transaction, change it, audit it, tell the reporter, all in that transaction.

Every decision tells the reporter in the same transaction. A notice's idempotency key names
what makes it unique: the dispatch for once-per-dispatch decisions (approve, reject), the
incident for the one-time close, and the coordinator's command (its inbox row, ``ref``) for
decisions that can recur on the same dispatch (a reassignment back to boat-1, a second team
arriving). Replaying a command after a crash reuses its key, so the reporter hears it once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.models import Incident, Lane
from bot.store import incidents as store
from handlers.context import Services
from handlers.dispatch.notices import tell_victim


class DecisionError(Exception):
    """A coordinator command that cannot be carried out; the message says why."""


def command_ref(ref: str | None, now: float) -> str:
    """The key part naming one command; callers without an inbox row (tests, scripts) make a
    one-off decision per call."""
    return ref if ref is not None else f"t{int(now * 1000)}"


@dataclass(frozen=True, slots=True)
class CaseStep:
    """One decision in progress: the case as it is now, inside the decision's transaction."""

    services: Services
    conn: aiosqlite.Connection
    incident: Incident
    actor: str
    now: float

    async def audit(self, action: str, detail: dict[str, Any]) -> None:
        await store.audit(
            self.conn,
            actor=self.actor,
            action=action,
            incident_id=self.incident.id,
            now=self.now,
            detail=detail,
        )

    async def notify(
        self, template: str, key: str, lane: Lane = Lane.URGENT, **values: object
    ) -> bool:
        """Tell the reporter (see notices.tell_victim); True when the text was shortened."""
        return await tell_victim(
            self.conn, self.services, self.incident, template, key, self.now, lane, **values
        )


async def load_case(services: Services, case: str) -> Incident:
    incident = await store.by_case(services.db, case)
    if incident is None:
        raise DecisionError(f"no case {case.strip().upper()}")
    return incident


async def open_case(conn: aiosqlite.Connection, incident: Incident) -> Incident:
    """The incident as it is now (inside the decision's transaction); refuses a closed case.
    Checked inside the transaction: two people closing the same case at once (or a resend)
    must not tell the reporter twice."""
    fresh = await store.get(conn, incident.id)
    assert fresh is not None
    if fresh.status == "resolved":
        raise DecisionError(f"{fresh.case} is already resolved")
    return fresh


@asynccontextmanager
async def decision(services: Services, case: str, actor: str) -> AsyncIterator[CaseStep]:
    """``async with decision(...) as step``: a DecisionError (or any error) inside rolls the
    whole decision back, notice included."""
    incident = await load_case(services, case)
    now = services.clock()
    async with services.db.transaction() as conn:
        yield CaseStep(services, conn, await open_case(conn, incident), actor, now)
