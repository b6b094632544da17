"""The Ollama stand-in speaks Ollama's wire format (docs/facts.md), checked with raw httpx."""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.ollama_standin import (
    BUSY_MESSAGE,
    RUNNER_CRASH_MESSAGE,
    OllamaStandIn,
    busy,
    close_abruptly,
    delayed,
    empty_reply,
    garbage,
    go_base64_error,
    http_error,
    ollama_standin_fixture,  # noqa: F401  (registers the ollama_standin fixture)
    runner_crash,
    stream_error,
    text_reply,
    tool_reply,
)

MODEL = "gemma4:e4b"
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
USER = [{"role": "user", "content": "Water is rising, we are on the roof"}]
METRIC_KEYS = {
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
}


def chat(st: OllamaStandIn, **body: Any) -> httpx.Response:
    payload: dict[str, Any] = {"model": MODEL, "messages": USER, **body}
    return httpx.post(f"{st.url}/api/chat", json=payload, timeout=10)


def ndjson(resp: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


# ------------------------------------------------------------------ simple endpoints


def test_root_version_tags(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    root = httpx.get(st.url)
    assert root.status_code == 200
    assert root.text == "Ollama is running"
    assert httpx.get(f"{st.url}/api/version").json() == {"version": "0.30.0"}
    models = httpx.get(f"{st.url}/api/tags").json()["models"]
    names = {m["name"] for m in models}
    assert names == {MODEL, "embeddinggemma:latest"}
    for m in models:
        assert set(m) >= {"name", "model", "modified_at", "size", "digest", "details"}
        assert set(m["details"]) >= {
            "format",
            "family",
            "families",
            "parameter_size",
            "quantization_level",
        }
        assert RFC3339_NS.match(m["modified_at"])


def test_unknown_path_is_404_text(ollama_standin: OllamaStandIn) -> None:
    resp = httpx.post(f"{ollama_standin.url}/api/nope", json={})
    assert resp.status_code == 404
    assert resp.text == "404 page not found"


def test_show_capabilities_and_404(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    body = httpx.post(f"{st.url}/api/show", json={"model": MODEL}).json()
    assert body["capabilities"] == ["completion", "vision", "audio", "tools", "thinking"]
    assert {"modelfile", "parameters", "template", "details", "model_info"} <= set(body)
    assert body["model_info"]["general.architecture"] == "gemma4"
    st.set_capabilities(["completion", "tools"])
    assert httpx.post(f"{st.url}/api/show", json={"model": MODEL}).json()["capabilities"] == [
        "completion",
        "tools",
    ]
    missing = httpx.post(f"{st.url}/api/show", json={"model": "llama9"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "model 'llama9' not found"}


# ------------------------------------------------------------------ chat, non-stream


def test_chat_nonstream_text_shape(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(text_reply("Stay on the roof."))
    resp = chat(ollama_standin, stream=False, think=False)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"model", "created_at", "message", "done", "done_reason"} | METRIC_KEYS
    assert body["model"] == MODEL
    assert RFC3339_NS.match(body["created_at"])
    assert body["message"] == {"role": "assistant", "content": "Stay on the roof."}
    assert body["done"] is True
    assert body["done_reason"] == "stop"
    assert all(isinstance(body[k], int) and body[k] > 0 for k in METRIC_KEYS)


def test_chat_nonstream_tool_calls_shape(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(
        tool_reply(
            {"name": "dispatch_rescue_team", "arguments": {"kind": "boat", "people": 4}},
            {"name": "log_incident", "arguments": {"summary": "roof"}},
        )
    )
    tools = [{"type": "function", "function": {"name": "dispatch_rescue_team"}}]
    body = chat(ollama_standin, stream=False, think=False, tools=tools).json()
    calls = body["message"]["tool_calls"]
    assert body["done_reason"] == "stop"  # even with tool calls
    assert body["message"]["content"] == ""
    assert [c["function"]["index"] for c in calls] == [0, 1]
    assert calls[0]["function"]["name"] == "dispatch_rescue_team"
    assert calls[0]["function"]["arguments"] == {"kind": "boat", "people": 4}  # object
    assert all(re.fullmatch(r"call_[a-z0-9]{8}", c["id"]) for c in calls)


def test_chat_empty_reply_has_no_tool_calls(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(empty_reply())
    body = chat(ollama_standin, stream=False, think=False).json()
    assert body["message"] == {"role": "assistant", "content": ""}
    assert body["done"] is True


def test_thinking_on_by_default(ollama_standin: OllamaStandIn) -> None:
    assert "thinking" in chat(ollama_standin, stream=False).json()["message"]
    assert "thinking" not in chat(ollama_standin, stream=False, think=False).json()["message"]


def test_chat_without_messages_loads(ollama_standin: OllamaStandIn) -> None:
    body = chat(ollama_standin, stream=False, messages=[]).json()
    assert body["done_reason"] == "load"


# ------------------------------------------------------------------ streaming


def test_stream_is_default_and_ndjson(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(text_reply("Move to high ground now.", chunks=3))
    resp = chat(ollama_standin, think=False)  # no "stream" key: the server streams
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(resp)
    assert len(lines) == 4
    assert all(line["done"] is False for line in lines[:-1])
    assert "".join(line["message"]["content"] for line in lines) == "Move to high ground now."
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert set(final) >= METRIC_KEYS
    assert not METRIC_KEYS & set(lines[0])


def test_stream_tool_calls(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(tool_reply({"name": "f", "arguments": {"a": 1}}))
    lines = ndjson(chat(ollama_standin, stream=True, think=False))
    calls = [c for line in lines for c in line["message"].get("tool_calls", [])]
    assert calls[0]["function"] == {"index": 0, "name": "f", "arguments": {"a": 1}}


def test_stream_error_after_start_is_200_error_line(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(stream_error(RUNNER_CRASH_MESSAGE, after_text="Go to"))
    resp = chat(ollama_standin, stream=True, think=False)
    assert resp.status_code == 200
    lines = ndjson(resp)
    assert lines[0]["message"]["content"] == "Go "
    assert lines[-1] == {"error": RUNNER_CRASH_MESSAGE}


def test_stream_error_before_start_keeps_status(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.push_chat(busy())
    resp = chat(ollama_standin, stream=True)
    assert resp.status_code == 503
    assert resp.json() == {"error": BUSY_MESSAGE}


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        (busy(), 503, "server busy, please try again.  maximum pending requests exceeded"),
        (runner_crash(), 500, "llama runner process has terminated: exit status 2"),
        (http_error(502, "bad gateway"), 502, "bad gateway"),
    ],
)
def test_scripted_http_errors(
    ollama_standin: OllamaStandIn, spec: dict[str, Any], status: int, message: str
) -> None:
    ollama_standin.push_chat(spec)
    resp = chat(ollama_standin, stream=False)
    assert resp.status_code == status
    assert resp.json() == {"error": message}


def test_unknown_model_404(ollama_standin: OllamaStandIn) -> None:
    resp = chat(ollama_standin, stream=False, model="gemma9:xl")
    assert resp.status_code == 404
    assert resp.json() == {"error": "model 'gemma9:xl' not found"}


def test_tools_without_capability_400(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.set_capabilities(["completion", "vision"])
    tools = [{"type": "function", "function": {"name": "f"}}]
    resp = chat(ollama_standin, stream=False, tools=tools)
    assert resp.status_code == 400
    assert resp.json()["error"].endswith("does not support tools")
    assert chat(ollama_standin, stream=False).status_code == 200  # no tools: fine


def test_invalid_base64_images_400(ollama_standin: OllamaStandIn) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    for bad, pos in [(f"data:image/png;base64,{png}", 4), ("abc", 0), ("ab=c", 2)]:
        msgs = [{"role": "user", "content": "photo", "images": [png, bad]}]
        resp = chat(ollama_standin, stream=False, messages=msgs)
        assert resp.status_code == 400, bad
        assert resp.json() == {"error": f"illegal base64 data at input byte {pos}"}
    ok = chat(ollama_standin, stream=False, messages=[{"role": "user", "images": [png]}])
    assert ok.status_code == 200
    assert ollama_standin.requests_to("chat")[-1].images() == [b"\x89PNG\r\n\x1a\nfake"]


def test_go_base64_error_agrees_with_python() -> None:
    for raw in [b"", b"a", b"ab", b"abc", b"\x00\xff" * 50]:
        assert go_base64_error(base64.b64encode(raw).decode()) is None
    assert go_base64_error("YWJj\nZGVm") is None  # Go ignores CR/LF
    assert go_base64_error("YQ=") == 3
    assert go_base64_error("YQ==YQ==") == 4
    assert go_base64_error("Y===") == 1
    assert go_base64_error("YW Jj") == 2


def test_garbage_and_close(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    st.push_chat(garbage(), garbage())
    resp = chat(st, stream=False)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    with pytest.raises(json.JSONDecodeError):
        ndjson(chat(st, stream=True))
    st.push_chat(close_abruptly(), close_abruptly(partial=True))
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        chat(st, stream=False)
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message body"):
        chat(st, stream=False)
    assert chat(st, stream=False).status_code == 200  # the server survives


def test_delay_does_not_block_other_requests(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    st.push_chat(delayed(5.0, text_reply("late")))
    result: dict[str, Any] = {}

    def slow() -> None:
        started = time.monotonic()
        result["body"] = chat(st, stream=False).json()
        result["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=slow)
    thread.start()
    st.wait_for_requests(1, "chat", timeout=5)
    started = time.monotonic()
    assert httpx.get(f"{st.url}/api/version").status_code == 200
    assert time.monotonic() - started < 3.0  # not behind the 5 s chat
    thread.join(timeout=15)
    assert result["body"]["message"]["content"] == "late"
    assert result["elapsed"] >= 4.9


def test_delay_alone_answers_with_default(ollama_standin: OllamaStandIn) -> None:
    ollama_standin.set_default(text_reply("default reply"))
    ollama_standin.push_chat(delayed(0.1))
    assert chat(ollama_standin, stream=False).json()["message"]["content"] == "default reply"


# ------------------------------------------------------------------ scripting


def test_queue_then_hook_then_default(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    seen: list[dict[str, Any]] = []

    def hook(req: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(req)
        last = req["messages"][-1]
        if last["role"] == "tool":
            return text_reply(f"done: {last['content']}")
        return None

    st.hook = hook
    st.set_default(text_reply("fallback"))
    st.push_chat(text_reply("queued"))
    assert chat(st, stream=False).json()["message"]["content"] == "queued"
    assert seen == []  # the queue wins over the hook
    tool_msgs = [*USER, {"role": "tool", "tool_name": "f", "content": "team B"}]
    reply = chat(st, stream=False, messages=tool_msgs).json()
    assert reply["message"]["content"] == "done: team B"
    assert chat(st, stream=False).json()["message"]["content"] == "fallback"
    assert len(seen) == 2


def test_records_requests(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    chat(st, stream=False, options={"num_ctx": 8192})
    rec = st.requests_to("chat")[-1]
    assert rec.method == "POST" and rec.path == "/api/chat"
    assert rec.body["options"] == {"num_ctx": 8192}
    assert abs(rec.time - time.time()) < 5
    assert st.last_chat() is rec.body


def test_prompt_eval_count_estimate_and_cap(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    small = chat(st, stream=False, messages=[{"role": "user", "content": "x" * 400}]).json()
    assert 100 <= small["prompt_eval_count"] <= 110
    big_msgs = [{"role": "user", "content": "y" * 40_000}]
    big = chat(st, stream=False, messages=big_msgs, options={"num_ctx": 2048}).json()
    assert big["prompt_eval_count"] == 2048  # front-truncated to num_ctx, like Ollama
    dflt = chat(st, stream=False, messages=big_msgs).json()
    assert dflt["prompt_eval_count"] == 4096


# ------------------------------------------------------------------ embed


def test_embed_normalised_deterministic(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    texts = ["boat rescue flood", "boat rescue river", "snake bite first aid"]
    resp = httpx.post(f"{st.url}/api/embed", json={"model": "embeddinggemma", "input": texts})
    body = resp.json()
    assert {"model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"} <= set(
        body
    )
    vecs = body["embeddings"]
    assert len(vecs) == 3 and all(len(v) == 768 for v in vecs)
    assert all(math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9) for v in vecs)

    def cos(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2])
    again = httpx.post(f"{st.url}/api/embed", json={"model": "embeddinggemma", "input": texts[0]})
    assert again.json()["embeddings"] == [vecs[0]]
    short = httpx.post(
        f"{st.url}/api/embed",
        json={"model": "embeddinggemma", "input": ["x"], "dimensions": 128},
    ).json()["embeddings"][0]
    assert len(short) == 128
    assert math.isclose(math.fsum(x * x for x in short), 1.0)


def test_embed_errors(ollama_standin: OllamaStandIn) -> None:
    st = ollama_standin
    missing = httpx.post(f"{st.url}/api/embed", json={"model": "nomic", "input": ["a"]})
    assert missing.status_code == 404
    assert missing.json() == {"error": "model 'nomic' not found"}
    chat_model = httpx.post(f"{st.url}/api/embed", json={"model": MODEL, "input": ["a"]})
    assert chat_model.status_code == 400
    st.push("embed", busy())
    queued = httpx.post(f"{st.url}/api/embed", json={"model": "embeddinggemma", "input": ["a"]})
    assert queued.status_code == 503


def test_custom_embed_dim() -> None:
    with OllamaStandIn(embed_dim=256) as st:
        body = {"model": "embeddinggemma:latest", "input": "hello"}
        vec = httpx.post(f"{st.url}/api/embed", json=body).json()["embeddings"][0]
    assert len(vec) == 256


# ------------------------------------------------------------------ lifecycle


def test_stop_closes_keepalive_connections() -> None:
    st = OllamaStandIn().start()
    url = st.url
    with httpx.Client(timeout=2) as client:
        assert client.get(f"{url}/api/version").status_code == 200  # pooled connection
        st.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"{url}/api/version")


def test_stop_does_not_wait_for_delays() -> None:
    st = OllamaStandIn().start()
    st.push_chat(delayed(30))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            chat(st, stream=False)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    st.wait_for_requests(1, "chat")
    started = time.monotonic()
    st.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(errors) == 1  # dropped, not answered


def test_standalone_script_file_reloaded(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"default": text_reply("first"), "capabilities": ["completion"]}))
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "harness" / "ollama_standin.py"),
            "--port",
            "0",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("OLLAMA_STANDIN_URL=http://127.0.0.1:")
        url = line.strip().split("=", 1)[1]
        assert port_file.read_text() == url.rsplit(":", 1)[1]
        body = {"model": MODEL, "messages": USER, "stream": False}
        assert httpx.post(f"{url}/api/chat", json=body).json()["message"]["content"] == "first"
        show = httpx.post(f"{url}/api/show", json={"model": MODEL}).json()
        assert show["capabilities"] == ["completion"]
        script.write_text(json.dumps({"chat": [busy(), text_reply("second")]}))
        assert httpx.post(f"{url}/api/chat", json=body).status_code == 503
        assert httpx.post(f"{url}/api/chat", json=body).json()["message"]["content"] == "second"
        assert httpx.post(f"{url}/api/chat", json=body).json()["message"]["content"] == "first"
        httpx.post(f"{url}/_standin/queue", json={"specs": [text_reply("pushed")]})
        assert httpx.post(f"{url}/api/chat", json=body).json()["message"]["content"] == "pushed"
        recorded = httpx.get(f"{url}/_standin/requests").json()
        assert [r["path"] for r in recorded].count("/api/chat") == 5
    finally:
        proc.terminate()
        code = proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()  # an unclosed pipe is a ResourceWarning (an error here)
        assert code == 0


# ------------------------------------------------------------------ bad habits of real models


def test_bad_habits_are_ordinary_http_200_replies(ollama_standin: OllamaStandIn) -> None:
    from tests.harness.ollama_standin import echo_reply, endless_reply, text_tool_call

    system = [{"role": "system", "content": "You are Lifeline. Rules: be brief."}, *USER]
    ollama_standin.push_chat(
        echo_reply("Sure. "),
        text_tool_call("dispatch_rescue_team", {"location": "roof", "people_count": 4}),
        text_tool_call("get_incident_status", {}, syntax="json"),
        endless_reply(token_s=0.001),
    )
    echo = chat(ollama_standin, messages=system, stream=False).json()
    assert echo["message"]["content"] == "Sure. You are Lifeline. Rules: be brief."
    gemma = chat(ollama_standin, stream=False).json()["message"]
    assert gemma["content"] == (
        '<|tool_call>call:dispatch_rescue_team{location:<|"|>roof<|"|>,people_count:4}<tool_call|>'
    )
    assert "tool_calls" not in gemma  # the server's parser did not recognise it
    as_json = chat(ollama_standin, stream=False).json()["message"]["content"]
    assert json.loads(as_json) == {"name": "get_incident_status", "arguments": {}}
    endless = chat(ollama_standin, stream=False, options={"num_predict": 50}).json()
    assert endless["done_reason"] == "length" and endless["eval_count"] == 50
    assert len(endless["message"]["content"]) == 200


def test_a_rule_fails_one_message_every_time(ollama_standin: OllamaStandIn) -> None:
    resp = httpx.post(
        f"{ollama_standin.url}/_standin/rule",
        json={"match": "Kalikapur", "spec": {"empty": True}},
        timeout=5,
    )
    assert resp.status_code == 200
    poison = [{"role": "user", "content": "drowning at Kalikapur ghat"}]
    for _ in range(3):
        msg = chat(ollama_standin, messages=poison, stream=False).json()["message"]
        assert msg["content"] == "" and "tool_calls" not in msg
    assert chat(ollama_standin, stream=False).json()["message"]["content"] == "OK"
