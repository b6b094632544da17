"""bot/llm/ through the real ollama client (0.6.3) against the HTTP stand-in."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import math
import socket
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.llm import (
    LLM,
    ChatResult,
    EmptyTurn,
    ModelError,
    ModelRejected,
    ModelUnavailable,
    ToolCall,
    system_message,
    tool_result_message,
    user_message,
)
from bot.llm.client import _host_url
from config.settings import ModelSettings
from tests.harness.ollama_standin import (
    RUNNER_CRASH_MESSAGE,
    OllamaStandIn,
    busy,
    close_abruptly,
    delayed,
    empty_reply,
    garbage,
    http_error,
    ollama_standin_fixture,  # noqa: F401  (registers the ollama_standin fixture)
    raw,
    runner_crash,
    text_reply,
    tool_reply,
)

DISPATCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "dispatch_rescue_team",
        "description": "Send a rescue team to a location.",
        "parameters": {
            "type": "object",
            "properties": {
                "kind": {"type": "string", "enum": ["boat", "medical", "supply"]},
                "location": {"type": "string", "description": "Where the victims are"},
                "people": {"type": "integer", "description": "How many people"},
            },
            "required": ["kind", "location"],
        },
    },
}
HISTORY = [system_message("You coordinate flood rescue."), user_message("4 people on a roof")]


def settings_for(url: str, **overrides: Any) -> ModelSettings:
    values: dict[str, Any] = {
        "host": url,
        "timeout_s": 2.0,
        "connect_timeout_s": 0.5,
        "num_ctx": 4096,
        "temperature": 0.1,
        "keep_alive": "10m",
    }
    values.update(overrides)
    return ModelSettings(**values)


@pytest.fixture
async def llm(ollama_standin: OllamaStandIn) -> AsyncIterator[LLM]:
    client = LLM(settings_for(ollama_standin.url))
    yield client
    await client.aclose()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wav_b64(seconds: float = 0.2) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * int(16000 * seconds))
    return base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------ replies


async def test_text_reply(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(text_reply("Stay on the roof, a boat is coming."))
    result = await llm.chat(HISTORY)
    assert isinstance(result, ChatResult)
    assert result.content == "Stay on the roof, a boat is coming."
    assert result.tool_calls == ()
    assert result.prompt_eval_count > 0 and result.eval_count > 0
    assert 0 <= result.total_s < 2
    assert result.raw_message == {
        "role": "assistant",
        "content": "Stay on the roof, a boat is coming.",
    }


async def test_request_carries_settings_and_tools(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    await llm.chat(HISTORY, tools=[DISPATCH_TOOL])
    body = ollama_standin.last_chat()
    assert body["model"] == "gemma4:e4b"
    assert body["stream"] is False
    assert body["think"] is False
    # num_predict is always bounded (the staff budget unless the caller sizes it)
    assert body["options"] == {"num_ctx": 4096, "temperature": 0.1, "num_predict": 1024}
    assert body["keep_alive"] == "10m"
    assert body["messages"] == HISTORY
    [tool] = body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "dispatch_rescue_team"
    params = tool["function"]["parameters"]
    assert params["required"] == ["kind", "location"]
    assert params["properties"]["kind"] == {"type": "string", "enum": ["boat", "medical", "supply"]}
    assert "thinking" not in (await llm.chat(HISTORY)).raw_message


async def test_tool_call_round_trip(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    args = {"kind": "boat", "location": "Ward 7, blue house", "people": 4}
    ollama_standin.push_chat(tool_reply({"name": "dispatch_rescue_team", "arguments": args}))

    def answer_tool_result(req: dict[str, Any]) -> dict[str, Any] | None:
        msgs = req["messages"]
        if msgs[-1]["role"] == "tool" and msgs[-2].get("tool_calls"):
            return text_reply(f"Team dispatched: {msgs[-1]['content']}")
        return None

    ollama_standin.hook = answer_tool_result
    first = await llm.chat(HISTORY, tools=[DISPATCH_TOOL])
    assert first.tool_calls == (ToolCall("dispatch_rescue_team", args),)
    assert isinstance(first.tool_calls[0].arguments, dict)
    assert first.content == ""
    history = [*HISTORY, first.raw_message, tool_result_message("dispatch_rescue_team", "B-12")]
    second = await llm.chat(history, tools=[DISPATCH_TOOL])
    assert second.content == "Team dispatched: B-12"
    sent = ollama_standin.last_chat()["messages"]
    assert sent[-2]["tool_calls"][0]["function"] == {
        "name": "dispatch_rescue_team",
        "arguments": args,
    }
    assert sent[-1] == {"role": "tool", "tool_name": "dispatch_rescue_team", "content": "B-12"}


async def test_images_and_audio_pass_through(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    photo = base64.b64encode(b"\xff\xd8\xff\xe0 fake jpeg").decode()
    audio = wav_b64()
    await llm.chat([user_message("what is this?", [photo, audio])])
    rec = ollama_standin.requests_to("chat")[-1]
    assert rec.body["messages"][0]["images"] == [photo, audio]
    decoded = rec.images()
    assert decoded[0] == b"\xff\xd8\xff\xe0 fake jpeg"
    assert decoded[1][:4] == b"RIFF" and decoded[1][8:12] == b"WAVE"
    assert "audio" not in rec.body["messages"][0]


@pytest.mark.parametrize(
    "bad",
    [
        "data:image/jpeg;base64,/9j/4AAQ",  # the client's lax b64decode lets this one through
        "data:image/png;base64,iVBORw0KGgo=",
        "not base64!",
        "abc",
    ],
)
async def test_bad_media_rejected_before_sending(
    llm: LLM, ollama_standin: OllamaStandIn, bad: str
) -> None:
    with pytest.raises(ModelRejected) as info:
        await llm.chat([user_message("photo", [bad])])
    assert info.value.transient is False
    assert ollama_standin.requests_to("chat") == []


async def test_base64_that_names_a_file_is_sent_as_is(
    llm: LLM,
    ollama_standin: OllamaStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ollama-python reads a base64 *string* that happens to be an existing path as a file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "QUJD").write_bytes(b"not the photo")
    await llm.chat([user_message("photo", ["QUJD"])])
    rec = ollama_standin.requests_to("chat")[-1]
    assert rec.body["messages"][0]["images"] == ["QUJD"]
    assert rec.images() == [b"ABC"]


async def test_misplaced_tool_result_rejected(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    history = [*HISTORY, tool_result_message("dispatch_rescue_team", "B-12")]
    with pytest.raises(ModelRejected, match="must follow"):
        await llm.chat(history)
    assert ollama_standin.requests_to("chat") == []


# ------------------------------------------------------------------ failure classes


async def test_empty_reply_is_empty_turn(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(empty_reply())
    with pytest.raises(EmptyTurn) as info:
        await llm.chat(HISTORY, tools=[DISPATCH_TOOL])
    assert info.value.transient is True
    assert isinstance(info.value, ModelError)
    assert info.value.result is not None and info.value.result.prompt_eval_count > 0


async def test_whitespace_reply_is_empty_turn(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(text_reply("  \n"))
    with pytest.raises(EmptyTurn):
        await llm.chat(HISTORY)


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        (runner_crash(), 500),
        (busy(), 503),
        (http_error(502, "bad"), 502),
        (http_error(504, "x"), 504),
    ],
)
async def test_server_errors_are_transient(
    llm: LLM, ollama_standin: OllamaStandIn, spec: dict[str, Any], status: int
) -> None:
    ollama_standin.push_chat(spec)
    with pytest.raises(ModelUnavailable) as info:
        await llm.chat(HISTORY)
    assert info.value.transient is True
    assert info.value.status == status
    assert spec["error"] in info.value.reason


async def test_tools_unsupported_is_rejected(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.set_capabilities(["completion", "vision"])
    with pytest.raises(ModelRejected, match="does not support tools") as info:
        await llm.chat(HISTORY, tools=[DISPATCH_TOOL])
    assert info.value.status == 400
    assert info.value.transient is False


async def test_model_missing_is_rejected(ollama_standin: OllamaStandIn) -> None:
    async with LLM(settings_for(ollama_standin.url, name="gemma9:xl")) as client:
        with pytest.raises(ModelRejected, match="not found") as info:
            await client.chat(HISTORY)
    assert info.value.status == 404


async def test_server_side_bad_base64_is_rejected(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(http_error(400, "illegal base64 data at input byte 4"))
    with pytest.raises(ModelRejected, match="illegal base64"):
        await llm.chat(HISTORY)


async def test_timeout_within_budget(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(delayed(10, text_reply("too late")))
    async with LLM(settings_for(ollama_standin.url, timeout_s=0.6)) as client:
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="timed out") as info:
            await client.chat(HISTORY)
        elapsed = time.monotonic() - started
    assert info.value.transient is True
    assert 0.5 <= elapsed < 4.0  # bounded by timeout_s, not by the 10 s the server takes


async def test_delay_under_timeout_succeeds(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(delayed(0.3, text_reply("ok")))
    async with LLM(settings_for(ollama_standin.url, timeout_s=1.0)) as client:
        assert (await client.chat(HISTORY)).content == "ok"


async def test_trickling_body_bounded_by_overall_timeout(ollama_standin: OllamaStandIn) -> None:
    """httpx's timeout is per read; a body trickling in must still stop at timeout_s."""
    # a byte burst every 0.25 s < read timeout 0.8 s; the whole body would take 10 s
    ollama_standin.push_chat({"drip": 10.0, "pieces": 40})
    async with LLM(settings_for(ollama_standin.url, timeout_s=0.8)) as client:
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="timed out"):
            await client.chat(HISTORY)
    assert time.monotonic() - started < 5.0


async def test_server_down_is_unavailable() -> None:
    async with LLM(settings_for(closed_port_url())) as client:
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="cannot connect") as info:
            await client.chat(HISTORY)
    assert info.value.transient is True
    assert time.monotonic() - started < 3.0  # refused at once, not retried into the timeout


@pytest.mark.parametrize(
    "spec",
    [
        garbage(),
        close_abruptly(),
        close_abruptly(partial=True),
        raw(200, "<html>proxy error</html>", "text/html"),
        raw(200, '{"model":"gemma4:e4b","done":true}'),  # no "message"
        raw(  # arguments as a string: the client raises
            200,
            '{"model":"gemma4:e4b","message":{"role":"assistant","content":"",'
            '"tool_calls":[{"function":{"name":"f","arguments":"{\\"a\\":1}"}}]},"done":true}',
        ),
    ],
    ids=["garbage", "close", "close-partial", "html", "no-message", "string-arguments"],
)
async def test_malformed_responses_are_unavailable(
    llm: LLM, ollama_standin: OllamaStandIn, spec: dict[str, Any]
) -> None:
    ollama_standin.push_chat(spec)
    with pytest.raises(ModelUnavailable) as info:
        await llm.chat(HISTORY)
    assert info.value.transient is True
    assert (await llm.chat(HISTORY)).content == "OK"  # the next call works


async def test_cancellation_propagates(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(delayed(5))
    task = asyncio.create_task(llm.chat(HISTORY))
    await asyncio.to_thread(ollama_standin.wait_for_requests, 1, "chat")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ------------------------------------------------------------------ logging


async def test_truncation_warning(
    llm: LLM, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.llm")
    ollama_standin.push_chat({"text": "fine", "prompt_eval_count": 1000})
    await llm.chat(HISTORY)
    assert "prompt_eval_count=1000/4096" in caplog.text
    assert "cut the front" not in caplog.text
    big = [system_message("protocol " * 5000), user_message("help")]  # ~12k tokens > 4096
    result = await llm.chat(big)
    assert result.prompt_eval_count == 4096  # what Ollama reports after silent truncation
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cut the front" in r.getMessage() for r in warnings)


async def test_unavailable_logged_once_per_state_change(
    llm: LLM, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.llm")
    ollama_standin.push_chat(busy(), busy(), busy())
    for _ in range(3):
        with pytest.raises(ModelUnavailable):
            await llm.chat(HISTORY)
    await llm.chat(HISTORY)
    await llm.chat(HISTORY)
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("unavailable" in m for m in msgs) == 1
    assert sum("answering" in m for m in msgs) == 1


async def test_dropped_schema_keys_warned_once(
    llm: LLM, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "set_priority",
            "description": "Set priority",
            "parameters": {
                "type": "object",
                "properties": {"level": {"type": "integer", "minimum": 1, "maximum": 5}},
                "required": ["level"],
            },
        },
    }
    await llm.chat(HISTORY, tools=[tool])
    await llm.chat(HISTORY, tools=[tool])
    sent = ollama_standin.last_chat()["tools"][0]["function"]["parameters"]["properties"]["level"]
    assert sent == {"type": "integer"}  # the client really drops them
    warned = [r for r in caplog.records if "drops schema keys" in r.getMessage()]
    assert len(warned) == 1
    assert "level.maximum" in warned[0].getMessage()


# ------------------------------------------------------------------ probe


async def test_probe_up(llm: LLM) -> None:
    health = await llm.probe()
    assert health.reachable and health.model_present
    assert health.capabilities == {"completion", "vision", "audio", "tools", "thinking"}
    assert health.version == "0.30.0"
    assert health.ok and health.detail == "ok"
    assert llm.health is health


async def test_probe_missing_capability(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.set_capabilities(["completion", "tools"])  # like the MLX variants
    health = await llm.probe()
    assert health.model_present and not health.ok
    assert health.missing_capabilities == {"audio", "vision"}
    assert "audio" in health.detail and "vision" in health.detail


async def test_probe_model_missing(ollama_standin: OllamaStandIn) -> None:
    async with LLM(settings_for(ollama_standin.url, name="gemma9:xl")) as client:
        health = await client.probe()
    assert health.reachable and not health.model_present
    assert health.version == "0.30.0"
    assert "not found" in health.detail


async def test_probe_server_down(caplog: pytest.LogCaptureFixture) -> None:
    async with LLM(settings_for(closed_port_url())) as client:
        assert client.health.detail == "not probed yet"
        health = await client.probe()
        await client.probe()
    assert not health.reachable and not health.model_present
    assert health.version is None
    assert "unreachable" in health.detail
    assert sum("model health" in r.getMessage() for r in caplog.records) == 1


async def test_probe_server_busy_on_show(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push("show", busy())
    health = await llm.probe()
    assert health.reachable and not health.model_present
    assert "503" in health.detail


async def test_probe_recovers(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push("version", delayed(5))
    async with LLM(settings_for(ollama_standin.url, timeout_s=0.5)) as client:
        assert not (await client.probe()).reachable
        assert (await client.probe()).ok


# ------------------------------------------------------------------ embed


async def test_embed(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    vecs = await llm.embed("embeddinggemma", ["boat rescue", "snake bite"])
    assert len(vecs) == 2 and all(len(v) == 768 for v in vecs)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0) for v in vecs)
    assert ollama_standin.requests_to("embed")[-1].body["input"] == ["boat rescue", "snake bite"]
    assert await llm.embed("embeddinggemma", []) == []
    assert len(ollama_standin.requests_to("embed")) == 1


async def test_embed_errors(llm: LLM, ollama_standin: OllamaStandIn) -> None:
    with pytest.raises(ModelRejected):
        await llm.embed("nomic-embed-text", ["x"])
    ollama_standin.push("embed", busy())
    with pytest.raises(ModelUnavailable):
        await llm.embed("embeddinggemma", ["x"])


# ------------------------------------------------------------------ helpers


def test_message_helpers() -> None:
    assert user_message("hi") == {"role": "user", "content": "hi"}
    assert user_message("hi", ["QUJD"]) == {"role": "user", "content": "hi", "images": ["QUJD"]}
    assert tool_result_message("f", "ok") == {"role": "tool", "tool_name": "f", "content": "ok"}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("ollama.lan:8080", "http://ollama.lan:8080"),
        ("http://ollama.lan", "http://ollama.lan:80"),
        ("https://ollama.lan/", "https://ollama.lan:443"),
    ],
)
def test_host_url(host: str, url: str) -> None:
    assert _host_url(host) == url


def test_runner_crash_message_constant() -> None:
    assert RUNNER_CRASH_MESSAGE == "llama runner process has terminated: exit status 2"
