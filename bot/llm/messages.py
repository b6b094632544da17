"""The chat history and tool schemas in the form Ollama's chat API takes (docs/facts.md): audio
and images both travel in ``images`` as plain base64 (no data-URL prefix), and a tool result is
``{"role": "tool", "tool_name": …}`` right after the assistant message holding the calls.
Anything else is refused here, before it reaches the server, as ``ModelRejected``."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.llm.errors import ModelRejected

log = logging.getLogger(__name__)

# Keys of a JSON-schema property that ollama-python 0.6.3's Tool model keeps; others are dropped
# silently before the request leaves the process (pydantic extra="ignore").
_CLIENT_PROPERTY_KEYS = frozenset({"type", "items", "description", "enum"})


def system_message(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


def user_message(text: str, images_b64: Sequence[str] = ()) -> dict[str, Any]:
    """A user turn. ``images_b64``: plain base64 PNG/JPEG/WebP *or 16 kHz mono WAV audio*.

    Ollama has no audio field: audio travels in ``images`` like a picture. No data-URL prefix.
    """
    msg: dict[str, Any] = {"role": "user", "content": text}
    if images_b64:
        msg["images"] = list(images_b64)
    return msg


def prompt_messages(
    system: str,
    history: Sequence[dict[str, Any]],
    user: dict[str, Any],
    context: str | None = None,
) -> list[dict[str, Any]]:
    """A turn's messages in the order Ollama's prompt cache rewards: the static ``system`` text
    first (the template renders the tool declarations right after it), then the history, then
    the per-message ``context`` as a second system message, then the message itself. The
    runner re-evaluates only what follows the prefix shared with the slot's previous prompt,
    so nothing that changes per message may go into ``system``."""
    extra = [system_message(context)] if context else []
    return [system_message(system), *history, *extra, user]


def tool_result_message(name: str, content: str) -> dict[str, Any]:
    """A tool result; place it right after the assistant message holding the call."""
    return {"role": "tool", "tool_name": name, "content": content}


def wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate order and media; images go to the client as bytes (it re-encodes them).

    Passing bytes avoids ollama-python's habit of treating a base64 *string* that happens
    to name an existing file as a path to read.
    """
    out: list[dict[str, Any]] = []
    prev_role = ""
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            raise ModelRejected(f"message {i}: unknown role {role!r}")
        if role == "tool":
            if not msg.get("tool_name"):
                raise ModelRejected(f"message {i}: tool result without tool_name")
            prev = messages[i - 1] if i else {}
            after_calls = prev_role == "assistant" and bool(prev.get("tool_calls"))
            if not (prev_role == "tool" or after_calls):
                raise ModelRejected(
                    f"message {i}: tool result must follow the assistant message with the "
                    "calls (Gemma 4's template drops it anywhere else)"
                )
        wire = dict(msg)
        if msg.get("images"):
            wire["images"] = [_decode_media(i, j, img) for j, img in enumerate(msg["images"])]
        out.append(wire)
        prev_role = str(role)
    return out


def check_tools(tools: list[dict[str, Any]], warned: set[str]) -> None:
    """Refuse a tool without a name; warn once per tool (``warned`` remembers which) about
    schema keys the client would drop silently."""
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(fn, Mapping) or not fn.get("name"):
            raise ModelRejected(f"tool schema without function.name: {tool!r}")
        name = str(fn["name"])
        if name in warned:
            continue
        props = (fn.get("parameters") or {}).get("properties") or {}
        dropped = sorted(
            {
                f"{prop}.{key}"
                for prop, schema in props.items()
                if isinstance(schema, Mapping)
                for key in schema
                if key not in _CLIENT_PROPERTY_KEYS
            }
        )
        if dropped:
            warned.add(name)
            log.warning(
                "tool %s: ollama-python drops schema keys %s; keep schemas flat "
                "(type/description/enum) and validate arguments server-side",
                name,
                ", ".join(dropped),
            )


def _decode_media(msg_index: int, img_index: int, value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ModelRejected(f"message {msg_index} image {img_index}: expected base64 str")
    if value.startswith("data:"):
        raise ModelRejected(
            f"message {msg_index} image {img_index}: data-URL prefix; send plain base64"
        )
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelRejected(f"message {msg_index} image {img_index}: invalid base64") from exc
