"""A drill's evidence built by hand, the way a drill records it: `clean()` is a small drill in
which every promise was kept; the row builders let a test plant one violation into it."""

from __future__ import annotations

import json

from bot.drill.checks import Evidence, Sent
from bot.drill.journal import Command, Injected, Journal, ModelMedia, Notice, Reply, Sample
from bot.store.snapshot import Snapshot

A, B = "+8801700000001", "+8801700000002"
COORD, RESP = "@coord1:localhost", "@resp1:localhost"
ROOF = "Water rising, 5 of us on the roof of the school in Ulipur, send boat"
WATER = "We are 3 people at the Ulipur shelter, no drinking water"
T0 = 1_000_000.0
# Matrix victims: a photo with its caption and EXIF GPS, and a voice note (a life threat)
PHOTO, VOICE = "@victim-0-1:localhost", "@victim-0-2:localhost"
STREET = "Street under water, 4 of us upstairs in Chilmari"
GPS = (25.71234, 89.61234)


def matrix_victims() -> list[Injected]:
    return [
        Injected(
            T0 + 3,
            PHOTO,
            STREET,
            "p/2",
            "report",
            "en",
            False,
            4,
            "",
            channel="matrix",
            event_id="$photo",
            media="photo",
            lat=GPS[0],
            lon=GPS[1],
        ),
        Injected(
            T0 + 6,
            VOICE,
            ROOF,
            "p/3",
            "report",
            "en",
            True,
            5,
            "",
            channel="matrix",
            event_id="$voice",
            media="voice",
        ),
    ]


def clean() -> Evidence:
    """A small drill in which every promise was kept."""
    journal = Journal(
        scenario="unit",
        started=T0,
        ended=T0 + 300,
        staff=[COORD, RESP],
        send_per_minute=60,
        budgets={
            "ack_slack_s": 30,
            "alert_within_s": 60,
            "drain_within_s": 120,
            "duplicate_window_s": 2.0,
            "restart_allowance_s": 30,
        },
        injected=[
            Injected(T0 + 1, A, ROOF, "p/0", "report", "en", True, 5, "sim1"),
            Injected(T0 + 2, B, WATER, "p/1", "report", "en", False, 3, "sim1"),
            Injected(T0 + 40, A, "status", "p/0", "status", "en", False, None, "sim1"),
            *matrix_victims(),
        ],
        commands=[Command(T0 + 20, COORD, "!approve LF-1000", "LF-1000")],
        notices=[
            Notice(T0 + 3, "[CRITICAL] LF-1000 new case\nwhere: ? | people: 5"),
            Notice(T0 + 10, "[CRITICAL] LF-1000 DISPATCH REQUEST - approve with !approve LF-1000"),
            Notice(T0 + 12, "[CRITICAL] LF-1003 DISPATCH REQUEST - approve with !approve LF-1003"),
        ],
        samples=[Sample(T0 + 5, 2, 3, 1), Sample(T0 + 60, 0, 0, 6)],
        replies=[
            Reply(T0 + 4, PHOTO, "Lifeline LF-1002: we got your message", "$a1"),
            Reply(T0 + 7, VOICE, "Lifeline LF-1003: we got your message", "$a2"),
        ],
        model_media=[ModelMedia(T0 + 8, PHOTO, "photo", 1), ModelMedia(T0 + 9, VOICE, "voice", 1)],
        model_observed=True,
    )
    inbox = [
        inbox_row(1, "sms", A, ROOF, T0 + 1.2, needs_model=1),
        inbox_row(2, "sms", B, WATER, T0 + 2.2, needs_model=1),
        inbox_row(3, "matrix", COORD, "!approve LF-1000", T0 + 20.5, needs_model=0),
        inbox_row(4, "sms", A, "status", T0 + 40.2, needs_model=0),
        inbox_row(5, "matrix", PHOTO, STREET, T0 + 3.2, needs_model=1, key="$photo"),
        inbox_row(6, "matrix", VOICE, "", T0 + 6.2, needs_model=1, key="$voice"),
    ]
    outbox = [
        outbox_row(1, "ack:1", A, 0, T0 + 4, inbox_id=1),
        outbox_row(2, "ack:2", B, 0, T0 + 5, inbox_id=2),
        outbox_row(3, "reply:1", A, 0, T0 + 8, inbox_id=1),
        outbox_row(4, "reply:2", B, 1, T0 + 9, inbox_id=2),
        outbox_row(5, "alert:case:1:critical", "!room", 0, T0 + 3, channel="matrix"),
    ]
    db = Snapshot(
        inbox=inbox,
        outbox=outbox,
        incidents=[
            case_row(1, "LF-1000", A, priority=0, people=5),
            case_row(2, "LF-1001", B, priority=2, people=3),
            {**case_row(3, "LF-1002", PHOTO, priority=2, people=4), "lat": GPS[0], "lon": GPS[1]},
            case_row(4, "LF-1003", VOICE, priority=0, people=5),
        ],
        dispatches=[
            {
                "id": 1,
                "incident_id": 1,
                "team_id": "boat-1",
                "kind": "boat",
                "status": "assigned",
                "priority": 0,
                "people_count": 5,
                "requested_by": A,
                "decided_by": COORD,
                "created_at": T0 + 9,
                "updated_at": T0 + 21,
            }
        ],
        audit=[
            audit_row(1, T0 + 1.2, "gateway", "incident.created", 1),
            audit_row(2, T0 + 9, A, "dispatch.requested", 1, {"dispatch": 1}),
            audit_row(3, T0 + 21, COORD, "dispatch.assigned", 1, {"dispatch": 1, "team": "boat-1"}),
        ],
    )
    sent = [
        Sent(T0 + 4, A, "Lifeline LF-1000: we got your message", "aaaa"),
        Sent(T0 + 5, B, "Lifeline LF-1001: we got your message", "bbbb"),
        Sent(T0 + 8, A, "Boat requested", "cccc"),
        Sent(T0 + 9, B, "Boil water", "dddd"),
        Sent(T0 + 41, A, "LF-1000: dispatch assigned", "eeee"),
    ]
    return Evidence(journal, db, sent)


def inbox_row(
    rid: int, channel: str, peer: str, text: str, at: float, *, needs_model: int, key: str = ""
) -> dict[str, object]:
    return {
        "id": rid,
        "channel": channel,
        "dedup_key": key or f"{channel}-{rid}",
        "peer": peer,
        "text": text,
        "status": "done",
        "error": None,
        "order_key": f"{channel}:{peer}",
        "priority": 2,
        "incident_id": None,
        "needs_model": needs_model,
        "received_at": at,
        "created_at": at,
        "updated_at": at + 1,
        "done_at": at + 1,
    }


def outbox_row(
    rid: int,
    key: str,
    peer: str,
    lane: int,
    sent_at: float,
    *,
    inbox_id: int | None = None,
    channel: str = "sms",
) -> dict[str, object]:
    return {
        "id": rid,
        "idem_key": key,
        "channel": channel,
        "peer": peer,
        "text": key,
        "lane": lane,
        "status": "sent",
        "attempts": 1,
        "error": None,
        "inbox_id": inbox_id,
        "incident_id": None,
        "created_at": sent_at - 1,
        "updated_at": sent_at,
        "sent_at": sent_at,
    }


def case_row(
    iid: int, code: str, reporter: str, *, priority: int, people: int
) -> dict[str, object]:
    return {
        "id": iid,
        "case_code": code,
        "priority": priority,
        "status": "open",
        "people_count": people,
        "reporter": reporter,
        "channel": "matrix" if reporter.startswith("@") else "sms",
        "lat": None,
        "lon": None,
        "created_at": T0 + 1,
        "updated_at": T0 + 21,
    }


def audit_row(
    aid: int, at: float, actor: str, action: str, incident: int, detail: object = None
) -> dict[str, object]:
    return {
        "id": aid,
        "at": at,
        "actor": actor,
        "action": action,
        "incident_id": incident,
        "detail": json.dumps(detail or {}),
    }
