"""One model turn: prompt = system + protocols + incident context + history + message; then the
model↔tool loop with a round cap. Knows nothing about what to say — handlers supply prompts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from bot.llm import LLM, EmptyTurn, system_message, tool_result_message
from bot.models import Role
from bot.tools import ToolOutcome, ToolRegistry, result_text

log = logging.getLogger(__name__)

C = TypeVar("C")

NUDGE = (
    "Your last reply was empty. Answer the sender now in plain text, "
    "or call one of the tools with valid JSON arguments."
)


@dataclass
class TurnResult:
    content: str
    tool_outcomes: list[ToolOutcome] = field(default_factory=list)
    model_calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0


class Conversation(Generic[C]):
    def __init__(
        self,
        llm: LLM,
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
    ) -> TurnResult:
        """Raises ModelError (transient or not) when the model cannot produce a usable turn."""
        started = self._clock()
        messages: list[dict[str, Any]] = [system_message(system), *history, user]
        tools = self._registry.schemas(role) or None
        turn = TurnResult(content="")
        nudged = False
        for _round in range(self._max_rounds + 1):
            offer = tools if _round < self._max_rounds else None  # last round: text only
            try:
                result = await self._llm.chat(messages, offer)
            except EmptyTurn:
                turn.model_calls += 1
                if nudged:
                    raise
                nudged = True  # one re-prompt, then the turn counts as failed
                log.warning("model returned an empty turn; re-prompting once")
                messages.append(system_message(NUDGE))
                continue
            turn.model_calls += 1
            turn.prompt_tokens = max(turn.prompt_tokens, result.prompt_eval_count)
            if not result.tool_calls:
                turn.content = result.content.strip()
                break
            messages.append(result.raw_message)
            # Tool results go right after the assistant message that asked for them (Gemma 4).
            for call in result.tool_calls:
                outcome = await self._registry.call(call.name, call.arguments, role, ctx)
                turn.tool_outcomes.append(outcome)
                messages.append(tool_result_message(call.name, result_text(outcome)))
        turn.seconds = self._clock() - started
        if not turn.content:
            raise EmptyTurn("no text reply after the tool loop")
        return turn
