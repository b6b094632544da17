"""One model turn: prompt = static system text + history + per-message context + message (in
that order for Ollama's prompt cache); then the model↔tool loop with a round cap. Knows nothing
about what to say — handlers supply prompts.

Every reply passes the reply guard (bot.reply_guard) before it leaves this module. A refused
reply gets one corrective re-prompt as a *user* turn; a second refusal raises ``ReplyRejected``
(the message's failure: the handler sends the library fallback)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot import reply_guard
from bot.llm import (
    BadTurn,
    ChatModel,
    ChatResult,
    EmptyTurn,
    ToolCall,
    prompt_messages,
    tool_result_message,
    user_message,
)
from bot.models import Role
from bot.reply_guard import ReplyPolicy
from bot.tools import ToolOutcome, ToolRegistry, result_text

log = logging.getLogger(__name__)

C = TypeVar("C")


class ReplyRejected(BadTurn):
    """The model's reply was refused by the guard twice (once after a re-prompt)."""


@dataclass
class TurnResult:
    content: str
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)
    model_calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    raw_content: str = ""  # the accepted reply as the model wrote it (citations kept)
    rejections: list[str] = field(default_factory=list)  # guard reasons, in order
    text_tool_calls: int = 0  # tool calls the model wrote into its text


class Conversation(Generic[C]):
    def __init__(
        self,
        llm: ChatModel,
        registry: ToolRegistry[C],
        *,
        max_rounds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._llm = llm
        self._registry = registry
        self._max_rounds = max_rounds
        self._clock = clock

    async def run(
        self,
        *,
        system: str,
        history: Sequence[dict[str, Any]],
        user: dict[str, Any],
        role: Role,
        ctx: C,
        policy: ReplyPolicy,
        num_predict: int | None = None,
        context: str | None = None,
    ) -> TurnResult:
        """``system`` is the static text (the same for every turn of this role); ``context`` the
        per-message facts, placed after the history (bot.llm.messages.prompt_messages).

        Raises ModelError (transient or not) when the model cannot produce a usable turn;
        ``BadTurn`` (``ReplyRejected``/``EmptyTurn``) when the server answered but not usably."""
        started = self._clock()
        messages = prompt_messages(system, history, user, context)
        tools = self._registry.schemas(role) or None
        turn = TurnResult(content="")
        tool_rounds = 0
        while True:
            offer = tools if tool_rounds < self._max_rounds else None  # last round: text only
            try:
                result = await self._llm.chat(messages, offer, num_predict=num_predict)
            except EmptyTurn:
                turn.model_calls += 1
                self._refuse(turn, messages, policy, "empty reply: no content and no tool calls")
                continue
            turn.model_calls += 1
            turn.prompt_tokens = max(turn.prompt_tokens, result.prompt_eval_count)
            calls = result.tool_calls
            if not calls:
                found = reply_guard.text_tool_calls(result.content)
                if found.present:
                    if not (found.calls and offer):
                        why = "no tools on this round" if found.calls else "unparsable"
                        self._refuse(turn, messages, policy, f"tool-call syntax as text ({why})")
                        continue
                    calls = found.calls
                    turn.text_tool_calls += len(calls)
                    log.warning(
                        "model wrote %d tool call(s) as text (%s): handled as tool calls",
                        len(calls),
                        ", ".join(c.name for c in calls),
                    )
            if calls:
                if offer is None:
                    self._refuse(turn, messages, policy, "tool call on the text-only round")
                    continue
                tool_rounds += 1
                await self._run_tools(result, calls, messages, role, ctx, policy, turn)
                continue
            verdict = reply_guard.check(result.content, policy, done_reason=result.done_reason)
            if verdict.ok:
                turn.content, turn.raw_content = verdict.text, result.content.strip()
                break
            self._refuse(turn, messages, policy, verdict.reason)
        turn.seconds = self._clock() - started
        return turn

    def _refuse(
        self,
        turn: TurnResult,
        messages: list[dict[str, Any]],
        policy: ReplyPolicy,
        reason: str,
    ) -> None:
        """One corrective re-prompt per turn; the second refusal fails the turn."""
        turn.rejections.append(reason)
        if len(turn.rejections) > 1:
            log.warning("model reply refused again (%s): the turn failed", reason)
            raise ReplyRejected("reply guard: " + "; then ".join(turn.rejections))
        log.warning("model reply refused (%s): re-prompting once", reason)
        messages.append(user_message(policy.correction(reason)))

    async def _run_tools(
        self,
        result: ChatResult,
        calls: Sequence[ToolCall],
        messages: list[dict[str, Any]],
        role: Role,
        ctx: C,
        policy: ReplyPolicy,
        turn: TurnResult,
    ) -> None:
        # The assistant message carries the calls (also those the model wrote as text) and the
        # results go right after it (Gemma 4 drops tool messages anywhere else).
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": c.name, "arguments": c.arguments}} for c in calls
                ],
            }
            if calls is not result.tool_calls
            else result.raw_message
        )
        for call in calls:
            outcome = await self._registry.call(call.name, call.arguments, role, ctx)
            turn.tool_outcomes.append(outcome)
            text = result_text(outcome)
            policy.allow(text)  # the reply may quote what a tool returned (names, places)
            messages.append(tool_result_message(call.name, text))
