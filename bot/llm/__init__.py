"""The model boundary: the client (client.py), its classified errors (errors.py), the message
form Ollama takes (messages.py) and what a turn or a probe returns (types.py)."""

from bot.llm.client import LLM
from bot.llm.errors import BadTurn, EmptyTurn, ModelError, ModelRejected, ModelUnavailable
from bot.llm.messages import (
    prompt_messages,
    system_message,
    tool_result_message,
    user_message,
)
from bot.llm.types import (
    REQUIRED_CAPABILITIES,
    TEXT_CAPABILITIES,
    ChatModel,
    ChatResult,
    HostStatus,
    ModelHealth,
    ToolCall,
)

__all__ = [
    "LLM",
    "REQUIRED_CAPABILITIES",
    "TEXT_CAPABILITIES",
    "BadTurn",
    "ChatModel",
    "ChatResult",
    "EmptyTurn",
    "HostStatus",
    "ModelError",
    "ModelHealth",
    "ModelRejected",
    "ModelUnavailable",
    "ToolCall",
    "prompt_messages",
    "system_message",
    "tool_result_message",
    "user_message",
]
