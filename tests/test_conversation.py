"""bot.conversation without the gateway: one model turn against the Ollama stand-in over HTTP
(the real ollama client), with a tool registry of two small tools. What is checked is what the
model sees on the wire: the tool offer per role and per round, where tool results go, and the one
corrective re-prompt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.conversation import Conversation, ReplyRejected, TurnResult
from bot.llm import LLM, user_message
from bot.models import Role
from bot.reply_guard import ReplyPolicy
from bot.tools import Tool, ToolArgs, ToolRegistry
from config.settings import ModelSettings
from tests.harness.ollama_standin import (
    OllamaStandIn,
    empty_reply,
    text_reply,
    text_tool_call,
    tool_reply,
)

SYSTEM = "You answer flood victims. Keep replies short and practical."
ASK = "Where is the nearest shelter? We are in Ulipur."


@dataclass
class Desk:
    """The tools' context: what they were asked, in order."""

    asked: list[str] = field(default_factory=list)


class ShelterArgs(ToolArgs):
    area: str


class TeamArgs(ToolArgs):
    team: str


async def find_shelter(desk: Desk, args: ShelterArgs) -> dict[str, Any]:
    desk.asked.append(f"shelter:{args.area}")
    return {"shelter": f"{args.area} high school", "open": True}


async def stand_down(desk: Desk, args: TeamArgs) -> dict[str, Any]:
    desk.asked.append(f"stand_down:{args.team}")
    return {"team": args.team, "status": "stood down"}


def registry() -> ToolRegistry[Desk]:
    reg: ToolRegistry[Desk] = ToolRegistry()
    reg.register(
        Tool(
            "find_shelter",
            "The open shelter nearest to an area.",
            ShelterArgs,
            frozenset({Role.PUBLIC, Role.RESPONDER}),
            find_shelter,
        )
    )
    reg.register(
        Tool(
            "stand_down_team",
            "Stand a rescue team down.",
            TeamArgs,
            frozenset({Role.RESPONDER}),
            stand_down,
        )
    )
    return reg


def policy() -> ReplyPolicy:
    return ReplyPolicy.build(lang="en", lang_name="English", instructions=[SYSTEM])


@pytest.fixture
async def llm(ollama_standin: OllamaStandIn) -> AsyncIterator[LLM]:
    async with LLM(ModelSettings(host=ollama_standin.url, timeout_s=5, connect_timeout_s=2)) as m:
        yield m


async def turn(
    llm: LLM,
    desk: Desk,
    *,
    role: Role = Role.PUBLIC,
    max_rounds: int = 2,
    history: list[dict[str, Any]] | None = None,
) -> TurnResult:
    conversation = Conversation(llm, registry(), max_rounds=max_rounds)
    return await conversation.run(
        system=SYSTEM,
        history=history or [],
        user=user_message(ASK),
        role=role,
        ctx=desk,
        policy=policy(),
    )


def offered(body: dict[str, Any]) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


async def test_a_tool_result_goes_right_after_the_call_and_the_reply_may_quote_it(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    ollama_standin.push_chat(
        tool_reply({"name": "find_shelter", "arguments": {"area": "Ulipur"}}),
        text_reply("Go to the Ulipur high school, it is open."),
    )
    desk = Desk()
    result = await turn(llm, desk, history=[{"role": "assistant", "content": "We got you."}])
    assert result.content == "Go to the Ulipur high school, it is open."
    assert desk.asked == ["shelter:Ulipur"]
    assert [o.ok for o in result.tool_outcomes] == [True]
    assert result.model_calls == 2 and result.rejections == []
    second = ollama_standin.chat_requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "assistant", "user", "assistant", "tool"]
    assert second[3]["tool_calls"][0]["function"]["name"] == "find_shelter"
    assert second[4]["tool_name"] == "find_shelter"
    assert "Ulipur high school" in second[4]["content"]


async def test_tools_are_offered_by_role_and_a_tool_of_another_role_never_runs(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    ollama_standin.push_chat(
        tool_reply({"name": "stand_down_team", "arguments": {"team": "boat-1"}}),
        text_reply("Stay where you are, help is coming."),
    )
    desk = Desk()
    result = await turn(llm, desk, role=Role.PUBLIC)
    assert offered(ollama_standin.chat_requests[0]) == ["find_shelter"]
    assert desk.asked == []
    [outcome] = result.tool_outcomes
    assert not outcome.ok and "not permitted" in outcome.result["error"]
    assert "not permitted" in ollama_standin.chat_requests[1]["messages"][-1]["content"]

    ollama_standin.reset()
    ollama_standin.push_chat(text_reply("Noted."))
    await turn(llm, Desk(), role=Role.RESPONDER)
    assert offered(ollama_standin.chat_requests[0]) == ["find_shelter", "stand_down_team"]


async def test_the_last_round_offers_no_tools_and_a_call_there_is_refused_once(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    call = tool_reply({"name": "find_shelter", "arguments": {"area": "Ulipur"}})
    ollama_standin.push_chat(call, call, text_reply("Go to the Ulipur high school."))
    desk = Desk()
    result = await turn(llm, desk, max_rounds=1)
    bodies = ollama_standin.chat_requests
    assert [offered(b) for b in bodies] == [["find_shelter"], [], []]
    assert desk.asked == ["shelter:Ulipur"]  # the call on the text-only round did not run
    assert result.rejections == ["tool call on the text-only round"]
    assert bodies[2]["messages"][-1]["role"] == "user"  # the correction is a user turn
    assert result.content == "Go to the Ulipur high school."


async def test_a_tool_call_written_as_text_runs_as_a_tool_call(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    ollama_standin.push_chat(
        text_tool_call("find_shelter", {"area": "Ulipur"}),
        text_reply("Go to the Ulipur high school."),
    )
    desk = Desk()
    result = await turn(llm, desk)
    assert desk.asked == ["shelter:Ulipur"] and result.text_tool_calls == 1
    second = ollama_standin.chat_requests[1]["messages"]
    assert second[-2]["tool_calls"] == [
        {"function": {"name": "find_shelter", "arguments": {"area": "Ulipur"}}}
    ]
    assert second[-1]["role"] == "tool"


async def test_an_empty_turn_gets_one_correction_and_a_second_failure_fails_the_turn(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    ollama_standin.push_chat(empty_reply(), text_reply("Stay on the roof."))
    result = await turn(llm, Desk())
    assert result.content == "Stay on the roof." and result.model_calls == 2
    assert len(result.rejections) == 1 and "empty reply" in result.rejections[0]

    ollama_standin.reset()
    ollama_standin.push_chat(empty_reply(), empty_reply(), text_reply("never asked for"))
    with pytest.raises(ReplyRejected, match="empty reply"):
        await turn(llm, Desk())
    assert len(ollama_standin.chat_requests) == 2


async def test_a_reply_in_bengali_may_quote_the_latin_words_a_tool_returned(
    ollama_standin: OllamaStandIn, llm: LLM
) -> None:
    reply = "আপনি Ulipur high school এ যান। সেখানে আশ্রয় খোলা আছে, পানি ও খাবার আছে।"
    ollama_standin.push_chat(
        tool_reply({"name": "find_shelter", "arguments": {"area": "Ulipur"}}), text_reply(reply)
    )
    conversation = Conversation(llm, registry(), max_rounds=2)
    result = await conversation.run(
        system=SYSTEM,
        history=[],
        user=user_message("আমরা উলিপুরে আছি, আশ্রয় কোথায়?"),
        role=Role.PUBLIC,
        ctx=Desk(),
        policy=ReplyPolicy.build(lang="bn", lang_name="Bengali", instructions=[SYSTEM]),
    )
    assert result.content == reply and result.rejections == []
