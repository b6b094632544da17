"""The reply guard (bot.reply_guard) on its own, the model turn around it (bot.conversation) against
the Ollama stand-in, and a property test: whatever the model writes, what a victim is sent is a
guarded model reply or the library fallback, within the SMS budget."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import reply_guard, sms_text
from bot.conversation import Conversation, ReplyRejected
from bot.llm import LLM, BadTurn, user_message
from bot.models import Role
from bot.reply_guard import ReplyPolicy
from bot.tools import ToolRegistry
from config.settings import ModelSettings
from handlers.history import public_text
from handlers.prompts import STAFF_SYSTEM as STAFF_PROMPT
from handlers.prompts import VICTIM_CONTEXT, VICTIM_SYSTEM
from handlers.victim import victim_policy
from protocols.documents import chunk_text
from tests.harness.ollama_standin import (
    OllamaStandIn,
    Spec,
    echo_reply,
    empty_reply,
    endless_reply,
    gemma_tool_call_text,
    json_tool_call_text,
    text_reply,
    text_tool_call,
    wrong_script_reply,
)

PROTOCOLS = (
    "Safety protocols from the local library. Base safety advice on these excerpts and cite "
    "them as [P1], [P2]:\n\n[P1] (Drowning, WHO)\nCall for help. Throw something that floats. "
    "Do not jump in after them.\n\n[P2] (পানি, WHO)\nপানি ফুটিয়ে পান করুন।"
)
BUDGET = 3


def policy(lang: str = "en", *known: str) -> ReplyPolicy:
    return victim_policy(lang, PROTOCOLS, BUDGET, *known)


def filled_prompt() -> str:
    """What the model reads before the message: the static rules, then the per-message note."""
    return (
        VICTIM_SYSTEM
        + "\n\n"
        + VICTIM_CONTEXT.format(
            lang_name="Bengali",
            case="LF-1234",
            priority="critical",
            status="new",
            location="Char Bhadrasan",
            people=4,
            needs="boat",
            dispatches="none",
            protocols=PROTOCOLS,
        )
    )


# ---- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(" ...!! ?? ", "empty", id="punctuation"),
        pytest.param(filled_prompt()[:400], "instructions", id="prompt-echo"),
        pytest.param(
            "Sure. Reply in the language and script of the sender's message. Plain text, no "
            "markdown. At most two short sentences, then up to 3 numbered safety steps.",
            "instructions",
            id="rules-echo",
        ),
        pytest.param(
            gemma_tool_call_text("dispatch_rescue_team", {"location": "x"}), "syntax", id="gemma"
        ),
        pytest.param(
            'We will help. {"name": "approve_dispatch", "arguments": {"case": "LF-1"}}',
            "syntax",
            id="json-call",
        ),
        pytest.param('{"tool_calls": []}', "syntax", id="tool_calls"),
        pytest.param("<start_of_turn>model\nStay on the roof.", "syntax", id="start_of_turn"),
        pytest.param("Stay on the roof.<end_of_turn>", "syntax", id="end_of_turn"),
        pytest.param("Move up " * 200, "budget", id="ramble"),
    ],
)
def test_guard_refuses_bad_habits(text: str, reason: str) -> None:
    verdict = reply_guard.check(text, policy())
    assert not verdict.ok and reason in verdict.reason, verdict


def test_wrong_script_is_refused_but_place_names_codes_and_numbers_are_not() -> None:
    bn = policy("bn", "বাঁচাও, Char Bhadrasan school roof")
    turkish = str(wrong_script_reply()["text"])
    assert "script" in reply_guard.check(turkish, bn).reason
    ok = "আমরা আসছি LF-1234। Char Bhadrasan school এর ছাদে থাকুন। ১. কাপড় নাড়ুন। 2 km OK"
    assert reply_guard.check(ok, bn).ok
    assert "script" in reply_guard.check("আমরা আসছি। পানি ফুটিয়ে পান করুন। ছাদে থাকুন।", policy()).reason


def test_a_good_reply_passes_and_loses_its_citations() -> None:
    verdict = reply_guard.check("Call for help [P1]. Do not jump in after them [P1, P2].", policy())
    assert verdict.ok and verdict.text == "Call for help. Do not jump in after them."
    # quoting the protocol passages is what the model is asked to do: not an echo
    steps = "Call for help. Throw something that floats. Do not jump in after them. [P1]"
    assert reply_guard.check(steps, policy()).ok
    assert reply_guard.citations(steps) == ["P1"]


def test_a_reply_cut_by_num_predict_is_refused() -> None:
    verdict = reply_guard.check("Stay on the roof and", policy(), done_reason="length")
    assert not verdict.ok and "num_predict" in verdict.reason


def test_staff_replies_keep_citations_and_may_be_longer() -> None:
    staff = ReplyPolicy.build(lang="en", lang_name="English", instructions=(STAFF_PROMPT,))
    long = "LF-1234 critical at Ulipur, boat-1 assigned [P1]. " * 30
    assert reply_guard.check(long, staff).text == long.strip()


def test_tool_calls_written_as_text_are_parsed() -> None:
    args = {"location": "Char school, roof", "people_count": 4, "priority": "critical"}
    gemma = reply_guard.text_tool_calls("ok " + gemma_tool_call_text("dispatch_rescue_team", args))
    assert gemma.present and [(c.name, c.arguments) for c in gemma.calls] == [
        ("dispatch_rescue_team", args)
    ]
    as_json = reply_guard.text_tool_calls(json_tool_call_text("get_incident_status", {}))
    assert [c.name for c in as_json.calls] == ["get_incident_status"]
    broken = reply_guard.text_tool_calls('<|tool_call>call:dispatch{location:<|"|>x}')
    assert broken.present and not broken.calls
    assert not reply_guard.text_tool_calls("Stay on the roof, help is coming.").present


def test_a_heading_stays_with_its_steps() -> None:
    # the intro and the heading fit one chunk, the first step does not
    text = "Intro about water safety now." + " x" * 37 + "\n\n## পানি ফোটানো\n\n"
    text += "পানি ফুটিয়ে নিন। " * 8
    chunks = chunk_text(text, target=120, max_chars=200)
    assert all(not c.rstrip().splitlines()[-1].startswith("#") for c in chunks), chunks
    assert any("## পানি ফোটানো\n\nপানি ফুটিয়ে" in c for c in chunks), chunks


# ---- the model turn against the stand-in -----------------------------------------------------


async def run_turn(standin: OllamaStandIn, pol: ReplyPolicy, *, num_predict: int = 320) -> Any:
    settings = ModelSettings(host=standin.url, timeout_s=5, connect_timeout_s=2)
    async with LLM(settings) as llm:
        conversation: Conversation[None] = Conversation(llm, ToolRegistry(), max_rounds=2)
        return await conversation.run(
            system=filled_prompt(),
            history=[],
            user=user_message(public_text("water is rising, we are on the roof")),
            role=Role.PUBLIC,
            ctx=None,
            policy=pol,
            num_predict=num_predict,
        )


async def test_refused_reply_gets_one_corrective_user_turn(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(echo_reply("Sure! "), text_reply("Stay on the roof [P1]."))
    turn = await run_turn(ollama_standin, policy())
    assert turn.content == "Stay on the roof." and turn.raw_content.endswith("[P1].")
    assert turn.rejections and "instructions" in turn.rejections[0]
    second = ollama_standin.chat_requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "user"]  # not a system message
    assert "could not be sent" in second[-1]["content"]
    assert all(b["options"]["num_predict"] == 320 for b in ollama_standin.chat_requests)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(echo_reply(), id="echo"),
        pytest.param(empty_reply(), id="empty"),
        pytest.param(endless_reply(), id="endless"),
        pytest.param(
            text_tool_call("approve_dispatch", {"case": "LF-1"}, syntax="json"), id="json"
        ),
    ],
)
async def test_twice_refused_turn_is_a_bad_turn_not_an_outage(
    ollama_standin: OllamaStandIn, bad: Spec
) -> None:
    ollama_standin.set_default(bad)
    with pytest.raises(ReplyRejected) as info:
        await run_turn(ollama_standin, policy(), num_predict=64)
    assert isinstance(info.value, BadTurn) and info.value.transient and not info.value.outage
    assert len(ollama_standin.chat_requests) == 2


async def test_endless_generation_stops_at_num_predict(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(endless_reply(), text_reply("Stay on the roof."))
    turn = await run_turn(ollama_standin, policy(), num_predict=64)
    assert "num_predict" in turn.rejections[0] and turn.content == "Stay on the roof."


# ---- property: whatever the model writes ------------------------------------------------------

CONTROL = [
    "<|tool_call>",
    "<tool_call|>",
    '<|"|>',
    "<start_of_turn>",
    "<end_of_turn>",
    "call:dispatch_rescue_team{",
    '{"name": "dispatch_rescue_team", "arguments": {"location": "x"}}',
    '"tool_calls": [',
    "You are Lifeline, the assistant of a flood rescue coordination team.",
    "Reply in the language and script of the sender's message",
    "[P1]",
    "Stay on the roof. ",
    "ছাদে থাকুন। ",
    "Lütfen bekleyin ",
    "\n",
]
MODEL_TEXT = st.lists(
    st.one_of(
        st.sampled_from(CONTROL),
        st.text(max_size=40),
        st.builds(
            json.dumps,
            st.dictionaries(st.sampled_from(["name", "arguments", "x"]), st.text(max_size=8)),
        ),
    ),
    max_size=12,
).map("".join)
FORBIDDEN = ("<|", "|>", "<start_of_turn>", "<end_of_turn>", '"name"', "tool_call", "[P1]")
FALLBACK = "Lifeline LF-1234: your message is queued for a responder. Meanwhile: Stay safe."


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=MODEL_TEXT, second=MODEL_TEXT, lang=st.sampled_from(["en", "bn"]))
def test_what_is_sent_is_a_guarded_reply_or_the_fallback(
    ollama_standin: OllamaStandIn, first: str, second: str, lang: str
) -> None:
    ollama_standin.reset()
    ollama_standin.push_chat(text_reply(first), text_reply(second))
    pol = policy(lang)
    try:
        turn = asyncio.run(run_turn(ollama_standin, pol))
        sent = sms_text.fit(turn.content, BUDGET, suffix=" [LF-1234]")
        assert reply_guard.check(turn.content, pol).ok
        assert not any(bad in sent for bad in FORBIDDEN), sent
        shared, _ = reply_guard.echo_overlap(turn.content, pol.scaffolding)
        assert shared < reply_guard.ECHO_ALWAYS
    except BadTurn:
        sent = sms_text.fit(FALLBACK, BUDGET)
    assert sms_text.segments(sent) <= BUDGET
    assert sent.strip()


# ---- the queue: a message that failed goes behind those that have not ------------------------


async def test_a_failed_row_lets_fresh_rows_go_first_for_a_while(tmp_path: Any) -> None:
    from bot.models import Channel, Inbound, Priority
    from bot.store import inbox
    from bot.store.db import Database

    db = Database(tmp_path / "q.db")
    await db.open()
    try:
        async with db.transaction() as conn:
            for i, prio in enumerate((Priority.CRITICAL, Priority.MEDIUM)):
                msg = Inbound(Channel.SMS, f"+8801{i}", f"+8801{i}", f"m{i}", f"k{i}", 0.0)
                await inbox.insert(
                    conn,
                    msg,
                    role=Role.PUBLIC,
                    order_key=f"sms:+8801{i}",
                    needs_model=True,
                    lang="en",
                    priority=prio,
                    status="queued",
                    now=0.0,
                )
        poison = await inbox.claim_next(db, needs_model=True, fifo=False, now=1.0, lease_s=60)
        assert poison is not None and poison.text == "m0"  # the life threat first
        await inbox.retry_later(
            db, poison.id, at=2.0, error="bad turn", now=1.0, count_attempt=True
        )
        fresh = await inbox.claim_next(db, needs_model=True, fifo=False, now=3.0, lease_s=60)
        assert fresh is not None and fresh.text == "m1"  # the one that has not failed
        await inbox.retry_later(db, fresh.id, at=0.0, error="", now=3.0, count_attempt=False)
        late = 2.0 + inbox.FAILED_YIELD_S + 1  # waited long enough: its place back
        again = await inbox.claim_next(db, needs_model=True, fifo=False, now=late, lease_s=60)
        assert again is not None and again.text == "m0"
    finally:
        await db.close()
