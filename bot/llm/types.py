"""What a model turn and a health probe return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# What Lifeline needs from the chat model (docs/facts.md: gemma4:e4b reports all of these).
REQUIRED_CAPABILITIES: frozenset[str] = frozenset({"completion", "tools", "vision", "audio"})
TEXT_CAPABILITIES: frozenset[str] = frozenset({"completion", "tools"})


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatResult:
    content: str
    tool_calls: tuple[ToolCall, ...]
    prompt_eval_count: int
    eval_count: int
    total_s: float
    raw_message: dict[str, Any]  # the assistant message to append to the history as is
    done_reason: str = "stop"  # "length": stopped by num_predict, the reply is cut off


@dataclass(frozen=True)
class ModelHealth:
    reachable: bool
    model_present: bool
    capabilities: frozenset[str]
    version: str | None
    detail: str

    @property
    def missing_capabilities(self) -> frozenset[str]:
        return REQUIRED_CAPABILITIES - self.capabilities

    @property
    def ok(self) -> bool:
        return self.reachable and self.model_present and not self.missing_capabilities

    @property
    def usable(self) -> bool:
        """Text turns with tools work; voice notes/photos may still be unsupported."""
        return self.reachable and self.model_present and self.capabilities >= TEXT_CAPABILITIES


NOT_PROBED = ModelHealth(False, False, frozenset(), None, "not probed yet")


@dataclass(frozen=True)
class HostStatus:
    """One pool server as `!status`, the banner and `doctor` show it."""

    name: str
    url: str
    state: str  # "up" | "warming" | "down" | "refused"
    reason: str  # why it is not up ("" when up)
    slots: int
    in_flight: int
    median_turn_s: float | None
    last_error: str | None
    capabilities: frozenset[str]


class ChatModel(Protocol):
    """What a model turn needs (bot/conversation.py, handlers): one server's client (LLM) or
    the pool (ModelPool) that runs each turn on one of its servers."""

    @property
    def health(self) -> ModelHealth: ...

    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        num_predict: int | None = None,
    ) -> ChatResult: ...
