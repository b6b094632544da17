"""The dispatch package's parts without a gateway: the one decision helper (load → check →
change → audit → notify, all or nothing), team assignment by kind, and the reporter's modem.
Real SQLite; no transports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.models import Channel, Dispatch, Facts, Inbound, Incident, Priority, Role, Team
from bot.store import inbox
from bot.store import incidents as store
from bot.store.db import Database
from handlers.context import Notifier, Services
from handlers.dispatch import DecisionError, needs_approval, set_people
from handlers.dispatch.teams import assign_team
from handlers.dispatch.transition import command_ref, decision
from tests.harness.gateway import make_settings

REPORTER = "+8801700000001"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = make_settings(tmp_path, "http://127.0.0.1:9")
    db = Database(settings.storage.path)
    await db.open()
    now = time.time()
    await store.sync_teams(
        db, [Team("boat-1", "boat", "ghat", 8), Team("med-1", "medical", "", 4)], now
    )
    try:
        yield Services(db, settings, time.time, Notifier("!room:local"))
    finally:
        await db.close()


async def new_case(services: Services, needs: str = "") -> Incident:
    async with services.db.transaction() as conn:
        incident = await store.create(
            conn,
            channel=Channel.SMS,
            reporter=REPORTER,
            conversation=REPORTER,
            priority=Priority.HIGH,
            lang="en",
            summary="stuck on the roof",
            now=services.clock(),
        )
        if needs:
            await store.update(conn, incident.id, services.clock(), needs=needs)
    return incident


async def count(db: Database, sql: str) -> int:
    row = await db.fetchone(sql)
    assert row is not None
    return int(row[0])


async def test_decision_changes_audits_and_notifies_in_one_transaction(
    services: Services,
) -> None:
    incident = await new_case(services)
    async with decision(services, incident.case.lower(), "@coord:local") as step:
        assert step.incident.id == incident.id and step.actor == "@coord:local"
        await step.audit("test.step", {"n": 1})
        shortened = await step.notify("team_arrived", "victim:test:1", team="boat-1")
    assert shortened is False
    audits = await services.db.fetchall("SELECT actor, action, incident_id FROM audit")
    assert [tuple(a) for a in audits][-1] == ("@coord:local", "test.step", incident.id)
    rows = await services.db.fetchall("SELECT peer, idem_key, text FROM outbox")
    assert [(r[0], r[1]) for r in rows] == [(REPORTER, "victim:test:1")]
    assert incident.case in rows[0][2] and "boat-1" in rows[0][2]


async def test_a_refused_decision_leaves_nothing_behind(services: Services) -> None:
    incident = await new_case(services)
    audits_before = await count(services.db, "SELECT COUNT(*) FROM audit")
    with pytest.raises(DecisionError, match="refused on purpose"):
        async with decision(services, incident.case, "@coord:local") as step:
            await step.audit("test.step", {})
            await step.notify("team_arrived", "victim:test:2", team="boat-1")
            raise DecisionError("refused on purpose")
    assert await count(services.db, "SELECT COUNT(*) FROM audit") == audits_before
    assert await count(services.db, "SELECT COUNT(*) FROM outbox") == 0


async def test_decision_refuses_unknown_and_closed_cases(services: Services) -> None:
    with pytest.raises(DecisionError, match="no case LF-0000"):
        async with decision(services, " lf-0000 ", "@coord:local"):
            pass
    incident = await new_case(services)
    async with services.db.transaction() as conn:
        await store.update(conn, incident.id, services.clock(), status="resolved")
    with pytest.raises(DecisionError, match="already resolved"):
        await set_people(services, incident.case, "4", "@coord:local")


def test_command_ref_names_the_command_or_the_moment() -> None:
    assert command_ref("cmd:12", 5.0) == "cmd:12"
    assert command_ref(None, 5.0) == "t5000"


def test_needs_approval_follows_the_policy() -> None:
    assert not needs_approval("auto", Priority.LOW)
    assert not needs_approval("auto_critical", Priority.CRITICAL)
    assert needs_approval("auto_critical", Priority.HIGH)
    assert needs_approval("manual", Priority.CRITICAL)


async def test_assign_team_picks_a_free_team_of_the_kind_and_audits(services: Services) -> None:
    incident = await new_case(services, needs="injured, fever")
    async with decision(services, incident.case, "@coord:local") as step:

        async def medical_request(key: str) -> Dispatch:
            return await store.create_dispatch(
                step.conn,
                incident_id=incident.id,
                kind="medical",
                status="approved",
                priority=Priority.HIGH,
                location="ghat",
                people_count=2,
                needs="injured",
                idem_key=key,
                requested_by="@coord:local",
                now=step.now,
            )

        assigned = await assign_team(step, await medical_request("d:unit"), None)
        again = await medical_request("d:unit2")
        waiting = await assign_team(step, again, None)  # med-1 is busy now: it waits
    assert (assigned.team_id, assigned.status) == ("med-1", "assigned")
    assert (waiting.team_id, waiting.status) == (None, "approved")
    teams = {t.id: t.status for t in await store.list_teams(services.db)}
    assert teams == {"boat-1": "available", "med-1": "busy"}
    audits = await services.db.fetchall(
        "SELECT detail FROM audit WHERE action='dispatch.assigned' ORDER BY id"
    )
    assert ['"med-1"' in a[0] for a in audits] == [True, False]


async def test_last_modem_is_the_one_the_reporter_last_wrote_to(services: Services) -> None:
    now = services.clock()
    async with services.db.transaction() as conn:
        assert await inbox.last_modem(conn, Channel.SMS, REPORTER) is None
        for i, modem in enumerate(("sim1", "sim2", None)):
            facts = Facts(modem=modem)
            msg = Inbound(Channel.SMS, REPORTER, REPORTER, f"m{i}", f"k{i}", now + i, facts=facts)
            await inbox.insert(
                conn,
                msg,
                role=Role.PUBLIC,
                order_key=REPORTER,
                needs_model=False,
                lang="en",
                priority=Priority.LOW,
                status="done",
                now=now + i,
            )
        assert await inbox.last_modem(conn, Channel.SMS, REPORTER) == "sim2"
        assert await inbox.last_modem(conn, Channel.MATRIX, REPORTER) is None
