"""The broadcast package's pure parts: argument checks, what an advisory says and its rows, the
sitrep's posts, and the chart's spans read from the store (real SQLite)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot import sms_text
from bot.models import Channel, Lane, Priority, Team
from bot.store import activity
from bot.store import incidents as store
from bot.store.broadcasts import Broadcast
from bot.store.db import Database
from bot.store.subscriptions import Subscriber
from handlers.broadcasts.advisory import (
    ADVISORY_PREFIX,
    advisory_rows,
    advisory_texts,
    area_label,
    shortened_note,
    unknown_area_note,
)
from handlers.broadcasts.args import MAX_EVERY_MIN, ArgumentError, parse_every_minutes
from handlers.broadcasts.sitrep import sitrep_messages


def advisory(text: str = "Boil water.", area: str = "ward 5") -> Broadcast:
    return Broadcast(
        id=7,
        kind="advisory",
        area=area,
        text=text,
        every_min=None,
        run_at=0.0,
        status="active",
        created_by="@coord:local",
        created_at=0.0,
        updated_at=0.0,
    )


def test_every_minutes_is_a_whole_number_up_to_a_week() -> None:
    assert parse_every_minutes("30") == 30
    assert parse_every_minutes(str(MAX_EVERY_MIN)) == MAX_EVERY_MIN
    for bad in ("0", str(MAX_EVERY_MIN + 1), "1.5", "-5", "٣٠", "1234567", "ten"):
        with pytest.raises(ArgumentError, match="Minutes must be a whole number"):
            parse_every_minutes(bad)


def test_advisory_rows_skip_opted_out_and_key_each_recipient() -> None:
    b = advisory()
    texts = advisory_texts(b, 2)
    assert texts[Channel.SMS] == sms_text.fit(ADVISORY_PREFIX + "Boil water.", 2)
    assert texts[Channel.MATRIX] == "Advisory for ward 5: Boil water."
    subs = [
        Subscriber(Channel.SMS, "+1", "en", "+1"),
        Subscriber(Channel.SMS, "+2", "en", "+2"),
        Subscriber(Channel.MATRIX, "@a:x", "en", "!dm:x"),
    ]
    rows = list(advisory_rows(b, "F1", subs, texts, {(Channel.SMS, "+2")}))
    assert [(r.peer, r.conversation, r.idem_key) for r in rows] == [
        ("+1", "+1", "adv:7:F1:sms:+1"),
        ("@a:x", "!dm:x", "adv:7:F1:matrix:@a:x"),
    ]
    assert {r.lane for r in rows} == {Lane.BROADCAST}
    assert rows[1].text == texts[Channel.MATRIX]
    assert rows[0].meta == {"broadcast_id": 7, "fire": "F1"}


def test_advisory_remarks() -> None:
    assert area_label("*") == area_label("all") == "everyone"
    assert area_label("ward 5") == "ward 5"
    assert shortened_note("Boil water.", 1) == ""
    assert shortened_note("Boil water. " * 40, 1) == " (text shortened to 1 SMS)"
    assert unknown_area_note("*", {}, quoted=False) == ""
    assert unknown_area_note("ward 5", {"ward 5": 3}, quoted=False) == ""
    warning = unknown_area_note("ward 9", {"ward 5": 3}, quoted=True)
    assert warning == " — WARNING: nobody has joined 'ward 9' (known areas: ward 5 (3))"
    assert unknown_area_note("char", {}, quoted=False).endswith('!advise "char bhadrasan" …')


def test_sitrep_messages_post_the_chart_only_when_it_rendered(tmp_path: Path) -> None:
    b = advisory()
    text_only = sitrep_messages(b, "F1", "!room:x", "SITREP", None)
    assert [(m.idem_key, m.text) for m in text_only] == [("sitrep:7:F1:text", "SITREP")]
    chart = tmp_path / "c.png"
    both = sitrep_messages(b, "F1", "!room:x", "SITREP", chart)
    assert [m.idem_key for m in both] == ["sitrep:7:F1:text", "sitrep:7:F1:chart"]
    assert both[1].meta == {"image_path": str(chart), "body": "sitrep chart"}
    assert {(m.peer, m.conversation, m.channel) for m in both} == {
        ("!room:x", "!room:x", Channel.MATRIX)
    }


async def test_activity_spans_cover_open_and_recently_closed(tmp_path: Path) -> None:
    db = Database(tmp_path / "l.db")
    await db.open()
    now = time.time()
    try:
        await store.sync_teams(db, [Team("boat-1", "boat", "ghat", 8)], now)
        async with db.transaction() as conn:
            ids = []
            for i, pr in enumerate((Priority.CRITICAL, Priority.LOW, Priority.HIGH)):
                inc = await store.create(
                    conn,
                    channel=Channel.SMS,
                    reporter=f"+{i}",
                    conversation=f"+{i}",
                    priority=pr,
                    lang="en",
                    summary="x",
                    now=now - 7200,
                )
                ids.append(inc.id)
            await store.update(conn, ids[1], now - 600, status="resolved")  # closed recently
            await store.update(conn, ids[2], now - 5000, status="resolved")  # before the window
            d = await store.create_dispatch(
                conn,
                incident_id=ids[0],
                kind="boat",
                status="approved",
                priority=Priority.CRITICAL,
                location="ghat",
                people_count=1,
                needs="",
                idem_key="d1",
                requested_by="t",
                now=now - 3000,
            )
            await store.set_dispatch(conn, d.id, now - 3000, status="assigned", team_id="boat-1")
        cases = await activity.case_spans(db, now - 3600)
        assert sorted((c.priority, c.closed_at) for c in cases) == [
            (Priority.CRITICAL, None),
            (Priority.LOW, pytest.approx(now - 600)),
        ]
        teams = await activity.team_spans(db, now - 3600)
        assert [(t.team_id, t.ended_at) for t in teams] == [("boat-1", None)]
    finally:
        await db.close()
