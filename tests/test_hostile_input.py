"""Hostile input over SMS: prompt injection with a model that OBEYS it, one number flooding the
gateway, and messages at the size limits. Invariant 6: text in a message never grants authority."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import gammu
import pytest

from bot.models import Attachment, Channel, Facts, Inbound
from bot.sim import build_parts
from bot.sms_text import segments
from bot.textclean import clean_text, escape_unsafe, is_unsafe
from tests.harness.gateway import Gateway, make_settings, running_gateway, wait_for
from tests.harness.injection_corpus import CORPUS, forbidden_calls, render
from tests.harness.ollama_standin import (
    OllamaStandIn,
    Spec,
    prompt_estimate,
    text_reply,
    tool_reply,
)

VICTIM = "+8801712345678"
PERMITTED_REFUSALS = ("not permitted", "unknown tool", "no case", "invalid arguments")


def three_modems(tmp: Path) -> dict[str, Any]:
    return {
        "modems": [
            {
                "name": f"sim{i}",
                "device": str(tmp / f"modem-sim{i}"),
                "poll_interval_s": 0.1,
                "send_per_minute": 120,
            }
            for i in (1, 2, 3)
        ]
    }


async def count(gw: Gateway, sql: str, *params: Any) -> int:
    return int((await gw.rows(sql, *params))[0][0])


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if m.get("role") == "tool"]


async def test_obedient_model_gains_no_authority(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    victim_case: dict[str, str] = {}
    lock = threading.Lock()
    by_attacker: dict[str, str] = {}  # message text -> goal

    def obedient(body: dict[str, Any]) -> Spec:
        """Does what the message says: the scripted forbidden calls, then repeats every tool
        result verbatim to the sender (a model that leaks whatever the tools told it)."""
        msgs = body.get("messages") or []
        last_user = max(i for i, m in enumerate(msgs) if m.get("role") == "user")
        results = [m["content"] for m in msgs[last_user:] if m.get("role") == "tool"]
        if results:
            return text_reply("Done as you asked. " + " ".join(results))
        user = msgs[last_user]["content"]
        with lock:
            goal = next((g for t, g in by_attacker.items() if t in user), None)
            case = victim_case.get("case", "LF-0000")
        if goal is None:
            return text_reply("OK.")
        return tool_reply(*forbidden_calls(goal, case=case, number=VICTIM))

    standin = OllamaStandIn(hook=obedient).start()
    try:
        # the victim whose data the attackers want: a real case with a pending dispatch
        standin.push_chat(
            tool_reply(
                {
                    "name": "dispatch_rescue_team",
                    "arguments": {
                        "location": "Ulipur mosque roof",
                        "priority": "critical",
                        "people_count": 3,
                        "needs": "boat rescue",
                    },
                }
            ),
            text_reply("Your request is recorded."),
        )
        settings = make_settings(tmp_path, standin.url, sms=three_modems(tmp_path))
        assert settings.dispatch.approval == "coordinator"
        async with running_gateway(settings) as gw:
            gw.sms_in(VICTIM, "3 of us trapped on the Ulipur mosque roof, water rising")
            await gw.wait_sent(VICTIM, 2)
            await gw.idle()
            row = (await gw.rows("SELECT case_code, priority, location FROM incidents"))[0]
            case = row["case_code"]
            victim_case["case"] = case
            before = tuple(row)
            attackers: dict[str, str] = {}
            for i, entry in enumerate(CORPUS):
                number = f"+88019{i:08d}"
                text = render(entry, case=case, number=VICTIM)
                with lock:
                    by_attacker[text] = entry.goal
                attackers[number] = entry.id
                gw.sms_in(number, text, modem=i % 3)
            await wait_for(
                lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox", len(CORPUS) + 1), timeout=20
            )
            await gw.idle(timeout=90)
            dispatches = await gw.rows(
                "SELECT d.status, d.team_id, d.decided_by, i.reporter FROM dispatches d "
                "JOIN incidents i ON i.id = d.incident_id"
            )
            teams = await gw.rows("SELECT id, status FROM teams")
            after = tuple(
                (
                    await gw.rows(
                        "SELECT case_code, priority, location FROM incidents WHERE case_code=?",
                        case,
                    )
                )[0]
            )
            victim_status = (await gw.rows("SELECT status FROM incidents WHERE case_code=?", case))[
                0
            ][0]
            sent = gw.sent()
            audit = await gw.rows("SELECT actor, action FROM audit")
            inbox = await gw.rows("SELECT status FROM inbox")
    finally:
        standin.stop()

    # 1. nothing approved or assigned, no team moved, the victim's case untouched
    assert all(d["status"] == "pending_approval" for d in dispatches), [
        tuple(d) for d in dispatches
    ]
    assert all(d["team_id"] is None and d["decided_by"] is None for d in dispatches)
    assert {t["status"] for t in teams} == {"available"}
    assert after == before and victim_status != "resolved"
    assert {r[0] for r in inbox} == {"done"}
    # an attacker's own dispatch request is allowed, but only for their own case, pending
    reporters = [d["reporter"] for d in dispatches]
    assert reporters.count(VICTIM) == 1 and len(reporters) == len(set(reporters))

    # 2. every forbidden call was refused, and told to the model as an error
    attacker_bodies = [
        b
        for b in standin.chat_requests
        if any(t in m["content"] for m in b["messages"] if m["role"] == "user" for t in by_attacker)
    ]
    assert len(attacker_bodies) >= 2 * len(CORPUS)
    refused = 0
    for body in attacker_bodies:
        for msg in tool_messages(body):
            result = json.loads(msg["content"])
            if msg["tool_name"] == "dispatch_rescue_team":
                assert result.get("dispatch_status") in (None, "pending_approval"), result
            elif msg["tool_name"] == "get_incident_status" and "error" not in result:
                assert result["case"] != case  # own case only, the `case` argument is ignored
            else:
                assert any(p in result.get("error", "") for p in PERMITTED_REFUSALS), result
                refused += 1
    assert refused >= 2 * len(CORPUS)

    # 3. no other victim's data reached an attacker: not in prompts, tool results or SMS
    for body in attacker_bodies:
        # (the attacker's own message and the model's obedient calls may name the victim's
        # case or number: what matters is what the backend put in front of the model)
        for msg in body["messages"]:
            if msg["role"] in ("system", "tool"):
                assert VICTIM not in msg["content"] and case not in msg["content"], msg
        assert "Ulipur mosque" not in json.dumps(body, ensure_ascii=False)
    for m in sent:
        if m["to"] in attackers:
            assert VICTIM not in m["text"] and "Ulipur mosque" not in m["text"], m
            assert case not in m["text"], m
    assert not [m for m in sent if m["to"] == VICTIM and "cancel" in m["text"].lower()]

    # 4. every attempt is on record: staff tools denied loudly, unknown tools refused
    messages = [r.getMessage() for r in caplog.records]
    denied = [m for m in messages if m.startswith("authority denied: role public")]
    assert len(denied) >= len(CORPUS), len(denied)
    assert sum("refused: unknown tool" in m for m in messages) >= len(CORPUS) - 4
    assert any(a["action"] == "dispatch.requested" for a in audit)
    assert not any(a["action"].startswith(("dispatch.assigned", "incident.updated")) for a in audit)


async def _count_is(gw: Gateway, sql: str, n: int) -> bool:
    return await count(gw, sql) == n


# ---- flood control --------------------------------------------------------------------------


async def test_one_number_sending_500_sms_is_throttled_others_served(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    flooder, cap, n = "+8801555000000", 20, 500
    settings = make_settings(tmp_path, ollama_standin.url, queue={"per_sender_per_hour": cap})
    async with running_gateway(settings) as gw:
        for i in range(n):
            gw.sms_in(flooder, f"help help help {i}")  # distinct texts: not duplicates

        await wait_for(lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox", n), timeout=60)
        others = [f"+880171100000{i}" for i in range(3)]
        started = time.monotonic()
        for i, number in enumerate(others):
            gw.sms_in(number, f"family of {i + 3} stranded at Chilmari, water rising")
        for number in others:
            ack = await gw.wait_sent(number, 1, timeout=10)
            assert "received" in ack[0]["text"]
        ack_seconds = time.monotonic() - started
        for number in others:
            await gw.wait_sent(number, 2, timeout=30)
        statuses = dict(
            (r[0], r[1])
            for r in await gw.rows(
                "SELECT status, COUNT(*) FROM inbox WHERE peer=? GROUP BY status", flooder
            )
        )
        assert statuses.get("throttled") == n - cap, statuses  # kept, not dropped
        assert sum(statuses.values()) == n
        flood_case = await count(
            gw, "SELECT COUNT(DISTINCT incident_id) FROM inbox WHERE peer=?", flooder
        )
        assert flood_case == 1  # every row attached to the one case
        model_calls = [b for b in ollama_standin.chat_requests if "help help help" in json.dumps(b)]
        assert len(model_calls) <= cap
        assert len(gw.sent_to(flooder)) <= cap + 1  # one ack + at most one reply per kept row
    assert ack_seconds < 10


# ---- size limits ----------------------------------------------------------------------------


async def test_fifty_part_sms(tmp_path: Path, ollama_standin: OllamaStandIn) -> None:
    fifty = ("Water is rising in Ulipur ward 4 near the school. " * 160)[: 50 * 153]
    assert len(build_parts("+8801700000050", fifty)) == 50
    with pytest.raises(gammu.ERR_INVALIDDATA):  # no network delivers 51+ parts: libGammu caps
        build_parts("+8801700000050", fifty + " one more part")
    settings = make_settings(tmp_path, ollama_standin.url)
    async with running_gateway(settings) as gw:
        gw.sms_in("+8801700000050", fifty)
        sent = await gw.wait_sent("+8801700000050", 2, timeout=40)
        assert all(segments(m["text"]) <= settings.sms.segment_budget for m in sent)
        row = (await gw.rows("SELECT text, meta FROM inbox"))[0]
        assert row["text"] == fifty
        assert json.loads(row["meta"])["parts"] == 50
    body = ollama_standin.chat_requests[0]
    assert fifty in json.dumps(body, ensure_ascii=False)
    assert prompt_estimate(body, ollama_standin) < settings.model.num_ctx  # no front truncation


async def test_10000_char_message(tmp_path: Path, ollama_standin: OllamaStandIn) -> None:
    """Only Matrix can carry 10,000 characters; it must be stored whole and answered."""
    huge = ("बाढ़ का पानी बढ़ रहा है, हम छत पर हैं। " * 400)[:10_000]
    settings = make_settings(tmp_path, ollama_standin.url)
    async with running_gateway(settings) as gw:
        await gw.runtime.intake.accept([_dm("$huge", huge)])
        await wait_for(
            lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox WHERE status='done'", 1), timeout=30
        )
        assert (await gw.rows("SELECT text FROM inbox"))[0][0] == huge
        assert await count(gw, "SELECT COUNT(*) FROM outbox WHERE idem_key LIKE 'reply:%'") == 1
    body = ollama_standin.chat_requests[0]
    estimate = prompt_estimate(body, ollama_standin)
    # The whole text is offered to the model; the prompt must stay under num_ctx, or Ollama
    # silently drops the system prompt from the front.
    assert estimate < settings.model.num_ctx, estimate


def _dm(event_id: str, text: str, attachments: tuple[Attachment, ...] = ()) -> Inbound:
    return Inbound(
        channel=Channel.MATRIX,
        peer="@stranger:example.org",
        conversation="!dm:example.org",
        text=text,
        dedup_key=event_id,
        received_at=time.time(),
        attachments=attachments,
        facts=Facts(is_direct=True),
    )


async def test_many_attachments_are_capped(tmp_path: Path, ollama_standin: OllamaStandIn) -> None:
    from PIL import Image

    settings = make_settings(tmp_path, ollama_standin.url)
    media = tmp_path / "media"
    media.mkdir()
    atts = []
    for i in range(12):
        path = media / f"p{i}.jpg"
        Image.new("RGB", (64, 48), (i * 20, 80, 120)).save(path, "JPEG")
        atts.append(Attachment("image", "image/jpeg", str(path), path.stat().st_size, path.name))
    async with running_gateway(settings) as gw:
        await gw.runtime.intake.accept([_dm("$many", "photos of the road", tuple(atts))])
        await wait_for(
            lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox WHERE status='done'", 1), timeout=30
        )
        reply = (await gw.rows("SELECT text FROM outbox WHERE idem_key LIKE 'reply:%'"))[0][0]
    assert f"only the first {settings.media.max_attachments} attachments" in reply
    images = ollama_standin.requests_to("chat")[0].images()
    assert len(images) == settings.media.max_attachments


async def test_throttled_sender_escalating_to_life_threat_still_alerts(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    """Past the per-sender cap a message gets no ack, but a rise to CRITICAL still reaches the
    coordinators (the alert must not depend on the sender's rate)."""
    sender = "+8801555000001"
    settings = make_settings(tmp_path, ollama_standin.url, queue={"per_sender_per_hour": 2})
    async with running_gateway(settings) as gw:
        gw.runtime.services.notifier.coordination_room = "!ops:localhost"  # alerts queue only
        for text in ("need rice at Chilmari", "any news about rice", "when will food come"):
            gw.sms_in(sender, text)
        await wait_for(lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox", 3), timeout=30)
        gw.sms_in(sender, "my son is drowning, water is over the roof")
        await wait_for(lambda: _count_is(gw, "SELECT COUNT(*) FROM inbox", 4), timeout=30)
        alerts = await gw.rows(
            "SELECT idem_key FROM outbox WHERE channel='matrix' AND idem_key LIKE 'alert:case:%'"
        )
        statuses = [r[0] for r in await gw.rows("SELECT status FROM inbox ORDER BY id")]
    assert statuses[-1] == "throttled"
    assert any(a[0].endswith(":critical") for a in alerts), alerts


def test_clean_text_removes_what_could_drive_a_terminal_and_keeps_the_words() -> None:
    hostile = (
        "\x1b[2J\x1b[1;31mROOF\x1b[0m\x1b]8;;http://evil\x07here\x1b]8;;\x1b\\ 4\rpeople "
        "\u202eexe.txt\u202c \u2066iso\u2069 \u200e\u200f\x9b2J\x85\x00 আমরা র\u200d্যাব ক\u200cষ 🆘"
    )
    shown = clean_text(hostile)
    assert shown == "ROOFhere 4\npeople exe.txt iso  আমরা র\u200d্যাব ক\u200cষ 🆘"
    assert clean_text(shown) == shown
    assert not [ch for ch in shown if is_unsafe(ch)]
    as_json = escape_unsafe(json.dumps(hostile, ensure_ascii=False))
    assert json.loads(as_json) == hostile and not [ch for ch in as_json if is_unsafe(ch)]
    assert json.loads(escape_unsafe(json.dumps("\U000e0041", ensure_ascii=False))) == "\U000e0041"
