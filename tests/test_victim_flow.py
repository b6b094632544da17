"""handlers/victim.py without the gateway (tests/harness/desk.py): the intake effects of a
public message (case, ack, coordinator alert), the model turn against the Ollama stand-in, and
what the sender and the coordinators get when the model fails."""

from __future__ import annotations

from pathlib import Path

from bot import sms_text
from bot.llm import EmptyTurn
from bot.models import Priority
from bot.store import incidents
from bot.store.db import Database
from tests.harness.desk import ROOM, VICTIM, desk
from tests.harness.gateway import tool_call
from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply

ROOF = "Water rising fast, 4 of us on the roof of Char Bhadrasan school"
QUESTION = "Is the Ulipur road open for cars today?"


async def cases(db: Database) -> list[tuple[str, Priority, int]]:
    return [(i.case, i.priority, i.people_count) for i in await incidents.list_incidents(db)]


async def test_a_new_case_gets_one_ack_and_a_critical_one_alerts_the_room_at_once(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as d:
        first = await d.receive(ROOF)
        [(case, priority, people)] = await cases(d.db)
        assert priority == Priority.CRITICAL and people == 4
        assert (await d.row(first)).incident_id is not None
        out = await d.outbox()
        assert [(r["peer"], r["idem_key"]) for r in out] == [
            (VICTIM, f"ack:{first.inbox_id}"),
            (ROOM, f"alert:case:1:{Priority.CRITICAL.label}"),
        ]
        assert case in out[0]["text"] and "Help is being arranged" in out[0]["text"]
        assert sms_text.segments(out[0]["text"]) <= d.settings.sms.segment_budget
        assert case in out[1]["text"]

        d.now += 60  # a panicking repeat a minute later: same case, no second ack or alert
        await d.receive(ROOF + " please")
        assert len(await cases(d.db)) == 1
        assert len(await d.outbox()) == 2

        d.now += d.settings.queue.ack_repeat_after_s  # after the window: acknowledged again
        again = await d.receive("still on the roof, the water is higher")
        assert [r["idem_key"] for r in await d.outbox()][-1] == f"ack:{again.inbox_id}"


async def test_a_question_is_told_it_was_received_not_that_rescue_is_coming(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as d:
        await d.receive(QUESTION)
        [(_case, priority, _people)] = await cases(d.db)
        assert priority > Priority.HIGH
        [ack] = await d.outbox()  # no coordinator alert for a low-priority case
        assert ack["peer"] == VICTIM and "Help is being arranged" not in ack["text"]

        d.now += 60
        await d.receive(ROOF)  # the same case escalates: the room is alerted now
        [(_case, priority, _people)] = await cases(d.db)
        assert priority == Priority.CRITICAL
        assert [r["peer"] for r in await d.outbox()] == [VICTIM, VICTIM, ROOM]


async def test_the_model_turn_answers_on_the_case_and_may_dispatch(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    ollama_standin.push_chat(
        tool_reply(
            tool_call(
                "dispatch_rescue_team",
                location="Char Bhadrasan school roof",
                priority="critical",
                people_count=4,
                needs="boat",
            )
        ),
        text_reply("A boat is requested. 1. Stay on the roof [P1]. 2. Wave a cloth."),
    )
    async with desk(tmp_path, ollama_standin.url) as d:
        item = await d.receive(ROOF)
        row = await d.row(item)
        [reply] = await d.victim.handle(row)
        [(case, _priority, _people)] = await cases(d.db)
        assert reply.idem_key == f"reply:{item.inbox_id}" and reply.peer == VICTIM
        assert reply.text.startswith("A boat is requested.") and "[P1]" not in reply.text
        assert case in reply.text  # tagged with the case code
        assert sms_text.segments(reply.text) <= d.settings.sms.segment_budget
        messages = ollama_standin.chat_requests[0]["messages"]
        static, note = messages[0]["content"], messages[-2]  # rules first, the case at the end
        assert note["role"] == "system" and f"CASE {case}: priority critical" in note["content"]
        assert case not in static  # per-message facts stay out of the cached prefix
        user = ollama_standin.chat_requests[0]["messages"][-1]["content"]
        assert ROOF in user and "untrusted" in user  # the sender's words are data, fenced
        dispatches = await d.db.fetchall("SELECT status FROM dispatches")
        assert len(dispatches) == 1
        [turn] = await d.db.fetchall("SELECT ok, error FROM model_turns")
        assert (turn["ok"], turn["error"]) == (1, None)


async def test_when_the_model_fails_the_sender_gets_the_library_advice_on_their_case(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as d:
        item = await d.receive(ROOF)
        row = await d.row(item)
        [fallback] = await d.victim.degraded(row, EmptyTurn("no content"))
        [(case, _priority, _people)] = await cases(d.db)
        assert fallback.idem_key == f"fallback:{item.inbox_id}"
        assert case in fallback.text and fallback.peer == VICTIM
        assert sms_text.segments(fallback.text) <= d.settings.sms.segment_budget
        [turn] = await d.db.fetchall("SELECT ok, error FROM model_turns")
        assert turn["ok"] == 0 and "EmptyTurn" in turn["error"]


async def test_a_message_given_up_on_asks_the_coordinators_to_answer_by_hand(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as d:
        item = await d.receive(ROOF)
        row = await d.row(item)
        outs = await d.victim.dead(row, "model unreachable")
        [(case, _priority, _people)] = await cases(d.db)
        assert [o.peer for o in outs] == [VICTIM, ROOM]
        assert outs[0].idem_key == f"fallback:{item.inbox_id}"  # the same key: never twice
        assert f"!say {case}" in outs[1].text and "model unreachable" in outs[1].text
        assert outs[1].idem_key == f"alert:dead:{item.inbox_id}"
