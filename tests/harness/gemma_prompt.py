"""The prompt text Ollama builds from a chat request for Gemma 4, close enough to tell which bytes
two requests share — what the runner's prompt cache reuses.

After the layout of Ollama's Gemma 4 renderer (model/renderers/gemma4.go): ``<bos>``, then one
system turn holding the first system message and, right after it, the tool declarations; then
every other message as a turn of its own (a later system message too); tool results folded into
the model turn that called them; the generation prompt last. Simplified: a declaration is the
tool's JSON rather than Gemma's own syntax, and an image or audio clip is one placeholder tag
carrying a short hash of its bytes. Byte counts therefore differ a little from the real prompt;
where two prompts stop sharing bytes does not."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any


def render(body: dict[str, Any]) -> str:
    messages: list[dict[str, Any]] = list(body.get("messages") or [])
    tools: list[dict[str, Any]] = list(body.get("tools") or [])
    out = ["<bos>"]
    if messages and messages[0].get("role") == "system":
        first, messages = str(messages[0].get("content") or "").strip(), messages[1:]
    else:
        first = ""
    if first or tools:
        decls = "".join(f"<|tool>{_json(t.get('function', t))}<tool|>" for t in tools)
        out.append(f"<|turn>system\n{first}{decls}<turn|>\n")
    for msg in messages:
        role = str(msg.get("role"))
        if role == "tool":
            result = f"{msg.get('tool_name')}{{{msg.get('content') or ''}}}"
            out.append(f"<|tool_response>response:{result}<tool_response|>")
            continue
        out.append(f"<|turn>{'model' if role == 'assistant' else role}\n")
        for call in msg.get("tool_calls") or []:
            fn = call.get("function", {})
            out.append(f"<|tool_call>call:{fn.get('name')}{_json(fn.get('arguments'))}<tool_call|>")
        out.append(_media(msg.get("images") or ()))
        out.append(str(msg.get("content") or "").strip())
        out.append("<turn|>\n")
    out.append("<|turn>model\n")
    return "".join(out)


def static_prefix(body: dict[str, Any]) -> str:
    """The system turn: the first system message and the tool declarations."""
    text = render(body)
    return text[: text.index("<turn|>\n") + len("<turn|>\n")]


def shared_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two prompts, in characters."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _media(images: Sequence[Any]) -> str:
    return "".join(
        f"<|image:{hashlib.sha1(str(img).encode()).hexdigest()[:12]}|>" for img in images
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
