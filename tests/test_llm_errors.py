"""bot/llm/errors.py and bot/llm/messages.py without a server: the kinds of model failures and
the checks made before a request leaves."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import ollama
import pytest

from bot.errors import LifelineError, PermanentError, TransientError
from bot.llm import BadTurn, EmptyTurn, ModelRejected, ModelUnavailable
from bot.llm.errors import classify, describe
from bot.llm.messages import check_tools, tool_result_message, user_message, wire_messages


def test_model_errors_are_the_shared_kinds() -> None:
    unavailable = ModelUnavailable("busy", status=503)
    assert isinstance(unavailable, TransientError) and unavailable.transient
    assert unavailable.outage and unavailable.status == 503 and unavailable.reason == "busy"
    assert unavailable.retry_after_s is None
    rejected = ModelRejected("HTTP 400: bad image", status=400)
    assert isinstance(rejected, PermanentError) and not isinstance(rejected, TransientError)
    assert not rejected.transient and not rejected.outage
    for turn in (BadTurn("refused"), EmptyTurn("empty")):
        assert isinstance(turn, TransientError) and turn.transient and not turn.outage
        assert turn.status == 200 and turn.result is None
    assert all(
        isinstance(e, LifelineError) for e in (unavailable, rejected, BadTurn("x"), EmptyTurn("y"))
    )


def _classify(exc: BaseException) -> Any:
    return classify(exc, timeout_s=7, base_url="http://127.0.0.1:11434")


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (ollama.ResponseError("overloaded", 503), ModelUnavailable, "HTTP 503: overloaded"),
        (ollama.ResponseError("slow down", 429), ModelUnavailable, "HTTP 429: slow down"),
        (ollama.ResponseError("runner died", -1), ModelUnavailable, "stream error: runner died"),
        (ollama.ResponseError("no such model", 404), ModelRejected, "HTTP 404: no such model"),
        (TimeoutError(), ModelUnavailable, "timed out after 7s"),
        (ConnectionRefusedError(), ModelUnavailable, "cannot connect to http://127.0.0.1:11434"),
        (httpx.ReadError("reset"), ModelUnavailable, "connection broke: ReadError: reset"),
        (json.JSONDecodeError("x", "{", 0), ModelUnavailable, "malformed response: "),
        (TypeError("not JSON serialisable"), ModelRejected, "request not sendable: "),
        (RuntimeError("?"), ModelUnavailable, "unexpected error: RuntimeError: ?"),
    ],
)
def test_classify(exc: BaseException, kind: type[Exception], reason: str) -> None:
    err = _classify(exc)
    assert type(err) is kind
    assert err.reason.startswith(reason)


def test_classify_keeps_model_errors_and_reraises_cancellation() -> None:
    already = BadTurn("refused")
    assert _classify(already) is already
    with pytest.raises(asyncio.CancelledError):
        _classify(asyncio.CancelledError())


def test_describe() -> None:
    assert describe(ValueError("first line\nsecond")) == "ValueError: first line"
    assert describe(ValueError("  ")) == "ValueError"
    assert len(describe(ValueError("x" * 500))) == len("ValueError: ") + 200


def test_wire_messages_decodes_media_and_checks_order() -> None:
    wire = wire_messages([user_message("photo", ["aGVsbG8="])])
    assert wire == [{"role": "user", "content": "photo", "images": [b"hello"]}]
    with pytest.raises(ModelRejected, match="data-URL prefix"):
        wire_messages([user_message("photo", ["data:image/png;base64,aGVsbG8="])])
    with pytest.raises(ModelRejected, match="invalid base64"):
        wire_messages([user_message("photo", ["not base64!"])])
    with pytest.raises(ModelRejected, match="must follow the assistant message"):
        wire_messages([user_message("hi"), tool_result_message("lookup", "{}")])
    with pytest.raises(ModelRejected, match="unknown role"):
        wire_messages([{"role": "robot", "content": "x"}])
    calls = {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "a"}}]}
    ok = [user_message("hi"), calls, tool_result_message("a", "1"), tool_result_message("b", "2")]
    assert wire_messages(ok) == ok


def test_check_tools_warns_once_about_dropped_schema_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.llm")
    tool = {
        "type": "function",
        "function": {
            "name": "dispatch",
            "parameters": {"properties": {"people": {"type": "integer", "minimum": 1}}},
        },
    }
    warned: set[str] = set()
    check_tools([tool], warned)
    check_tools([tool], warned)
    assert warned == {"dispatch"}
    assert sum("people.minimum" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ModelRejected, match="without function.name"):
        check_tools([{"type": "function", "function": {}}], warned)
