"""bot/region/events.py: the regional event schema (pure) and the [region] settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.region import events
from bot.region.events import EventError
from config.settings import RegionSettings, Settings

CASE = {
    "code": "BHO-4821",
    "priority": "critical",
    "status": "open",
    "team": None,
    "location": "Ulipur ghat",
    "people": 6,
    "needs": "boat",
    "summary": "6 people on a roof",
}


def test_case_event_round_trips_through_room_content() -> None:
    ev = events.build("BHO", 17, "case", 1700000000.7, {**CASE, "lat": "23.81030"})
    content = ev.content()
    assert content["msgtype"] == "m.notice"
    assert content["body"] == (
        "BHO: new CRITICAL case BHO-4821 at Ulipur ghat, 6 people, needs boat"
    )
    assert content[events.FIELD] == {
        "v": 1,
        "district": "BHO",
        "seq": 17,
        "kind": "case",
        "at": 1700000000,
        "data": {**CASE, "lat": "23.81030"},
    }
    again = events.parse(json.loads(json.dumps(content)))
    assert again == ev
    assert ev.txn_id == "lifeline-region-BHO-17"


def test_no_floats_reach_the_room() -> None:
    """A homeserver refuses an event with a float (canonical JSON): M_BAD_JSON, dead letter."""
    ev = events.build("BHO", 1, "case", 1.5, {**CASE, "lat": events.degrees(23.8103)})
    teams = {"teams": [{"id": "b", "kind": "boat", "status": "lent", "until": 5}]}
    lend = events.build("BHO", 2, "lend", 2.25, {"team": "b", "to": "LAL", "until": 9})

    def floats(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) else []

    for e in (ev, lend, events.build("BHO", 3, "teams", 3.0, teams)):
        assert floats(e.content()) == []
    with pytest.raises(EventError, match="until"):
        events.build("BHO", 2, "lend", 2.0, {"team": "b", "to": "LAL", "until": 9.5})
    with pytest.raises(EventError, match="lat"):
        events.build("BHO", 2, "case", 2.0, {**CASE, "lat": 23.8})


def test_an_ordinary_message_is_not_an_event() -> None:
    assert events.parse({"msgtype": "m.text", "body": "!approve BHO-4821"}) is None


@pytest.mark.parametrize(
    "text",
    [
        "call 01712345678 now",
        "call +880 1712-345678 now",
        "call (017) 1234 5678",
        "ring 017.1234.5678 please",
    ],
)
def test_phone_numbers_never_leave_in_free_text(text: str) -> None:
    ev = events.build("BHO", 1, "case", 1.0, {**CASE, "summary": text, "needs": text})
    flat = json.dumps(ev.content())
    assert "[number]" in ev.data["summary"]
    digits_only = "".join(c for c in flat if c.isdigit())
    assert "5678" not in digits_only  # no tail of the number survives anywhere


def test_case_codes_and_counts_survive_the_scrub() -> None:
    assert events.scrub("see BHO-4821 and LF-12345678, 12 people") == (
        "see BHO-4821 and LF-12345678, 12 people"
    )


def test_free_text_is_one_short_line() -> None:
    ev = events.build("BHO", 1, "case", 1.0, {**CASE, "summary": "a\nb " + "x" * 500})
    assert "\n" not in ev.data["summary"]
    assert len(ev.data["summary"]) == events.TEXT_MAX


def test_no_field_for_a_reporter_can_be_added() -> None:
    with pytest.raises(EventError, match="unknown field.*reporter"):
        events.build("BHO", 1, "case", 1.0, {**CASE, "reporter": "+8801712345678"})


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (
            "case_state",
            {"code": "BHO-4821", "status": "assigned", "priority": "high", "team": "boat-1"},
        ),
        (
            "teams",
            {"teams": [{"id": "boat-1", "kind": "boat", "status": "lent", "borrower": "LAL"}]},
        ),
        ("sitrep", {"open": 3, "by_priority": {"critical": 1}, "by_status": {"open": 3}}),
        ("need", {"to": "*", "kind": "boat", "count": 2, "note": ""}),
        ("lend", {"team": "boat-1", "to": "LAL", "until": 1700003600}),
        ("return", {"team": "boat-1"}),
        ("hello", {"every_s": 300}),
    ],
)
def test_every_kind_validates_and_has_a_body(kind: str, data: dict[str, Any]) -> None:
    ev = events.validate(events.build("LAL", 3, kind, 2.0, data).to_field())
    assert ev.kind == kind
    assert events.body(ev).startswith("LAL")


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (
            {"v": 2, "district": "BHO", "seq": 1, "kind": "hello", "at": 1, "data": {"every_s": 1}},
            "version",
        ),
        (
            {"v": 1, "district": "bho", "seq": 1, "kind": "hello", "at": 1, "data": {"every_s": 1}},
            "district",
        ),
        (
            {"v": 1, "district": "BHO", "seq": 0, "kind": "hello", "at": 1, "data": {"every_s": 1}},
            "seq",
        ),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": True,
                "kind": "hello",
                "at": 1,
                "data": {"every_s": 1},
            },
            "seq",
        ),
        ({"v": 1, "district": "BHO", "seq": 1, "kind": "boom", "at": 1, "data": {}}, "kind"),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": 1,
                "kind": "hello",
                "at": "x",
                "data": {"every_s": 1},
            },
            "at",
        ),
        (
            {"v": 1, "district": "BHO", "seq": 1, "kind": "hello", "at": 1, "data": {}},
            "missing every_s",
        ),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": 1,
                "kind": "case",
                "at": 1,
                "data": {**CASE, "code": "4821"},
            },
            "case code",
        ),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": 1,
                "kind": "case",
                "at": 1,
                "data": {**CASE, "people": -1},
            },
            "people",
        ),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": 1,
                "kind": "need",
                "at": 1,
                "data": {"to": "x", "kind": "boat", "count": 1, "note": ""},
            },
            "to",
        ),
        (
            {
                "v": 1,
                "district": "BHO",
                "seq": 1,
                "kind": "sitrep",
                "at": 1,
                "data": {"open": 1, "by_priority": [], "by_status": {}},
            },
            "by_priority",
        ),
        ({"v": 1, "district": "BHO", "seq": 1, "at": 1, "data": {}}, "missing kind"),
        ("nope", "table"),
    ],
)
def test_invalid_fields_are_refused_with_a_reason(field: Any, reason: str) -> None:
    with pytest.raises(EventError, match=reason):
        events.parse({"msgtype": "m.notice", "body": "x", events.FIELD: field})


# ---- [region] settings ----------------------------------------------------------------------


def test_region_defaults_are_off() -> None:
    r = Settings().region
    assert (r.district, r.room, r.peers, r.case_prefix) == ("", "", {}, "LF")


def test_region_settings_normalise_codes() -> None:
    r = RegionSettings.model_validate(
        {"district": "bho", "room": "#flood:eoc.example", "peers": {"lal": "@lifeline:lal.example"}}
    )
    assert (r.district, r.peers, r.case_prefix) == ("BHO", {"LAL": "@lifeline:lal.example"}, "BHO")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"district": "B"}, "2-8 letters"),
        ({"district": "BHO-1"}, "2-8 letters"),
        ({"district": "lf"}, "LF"),
        ({"district": "BHO", "room": "flood-region"}, "room alias"),
        ({"room": "#flood:eoc.example"}, "need district"),
        ({"district": "BHO", "peers": {"LAL": "lifeline"}}, "Matrix id"),
        ({"district": "BHO", "peers": {"L-1": "@a:b"}}, "district code"),
        ({"district": "BHO", "peers": {"BHO": "@a:b"}}, "own"),
        ({"district": "BHO", "heartbeat_min": 10, "silent_after_min": 5}, "longer than"),
    ],
)
def test_bad_region_settings_say_what_is_wrong(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RegionSettings.model_validate(data)
