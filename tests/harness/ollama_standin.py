"""A faithful, scriptable stand-in for the Ollama HTTP API (tests, benches, subprocess e2e runs).

It speaks the wire format of Ollama v0.30 as documented in docs/facts.md and read in
server/routes.go: response shapes, status codes, NDJSON streaming (an error after the first
line arrives as a ``{"error": ...}`` line with HTTP 200), Go's base64 errors for ``images``,
``stream`` defaulting to true when absent, ``think`` defaulting to on for thinking models.

Behaviour is scripted with *response specs* (plain JSON-able dicts, see the helper functions
below), consumed in order from one queue per endpoint (``chat``, ``embed``, ``show``, ``tags``,
``version``, ``root``). When a queue is empty, ``chat`` asks the ``hook`` (in-process only:
``hook(request_json) -> spec | None``) and then falls back to the ``default`` spec; the other
endpoints answer normally.

Spec keys (combinable: ``delay`` applies first, then the first of the others that is present):

- ``{"text": "hi", "chunks": 3, "thinking": "…"}``  a reply (``chunks``: stream line count)
- ``{"tool_calls": [{"name": "f", "arguments": {...}}], "text": ""}``  tool calls
- ``{"empty": true}``  HTTP 200, empty content and no tool calls (Ollama's dropped call)
- ``{"error": "msg", "status": 500}``  HTTP error ``{"error": msg}``
- ``{"error": "msg", "after_text": "partial"}``  streaming only: content first, then the error
  line with HTTP 200 (non-stream requests get ``status``, default 500)
- ``{"delay": 2.5}``  wait before answering (other requests are served meanwhile)
- ``{"drip": 3.0}``  a valid non-stream reply whose body trickles in over 3 s (in
  ``"pieces"`` bursts, default 10)
- ``{"garbage": true}``  truncated JSON body (non-stream) / truncated NDJSON line (stream)
- ``{"close": true, "partial": false}``  drop the connection without (or, with ``partial``,
  in the middle of) a response
- ``{"raw": {"status": 200, "body": "…", "content_type": "…"}}``  anything else
- ``prompt_eval_count`` / ``eval_count`` / ``done_reason`` override the computed metrics.

Bad habits of real models (docs: "What a real model does"), all as ordinary HTTP 200 replies:

- ``{"echo": true, "text": "Sure. "}``  the text, then the request's system prompt (prompt echo)
- ``{"tool_call_text": {"name": …, "arguments": {…}}, "syntax": "gemma"|"json"}``  a tool call
  written into ``content`` (Gemma's native ``<|tool_call>call:…<tool_call|>`` or a JSON object)
  instead of ``tool_calls``, as when the server's parser does not recognise it
- ``{"endless": true, "token_s": 0.002, "text": "word "}``  generation that never stops by
  itself: ``text`` repeated, one token per ``token_s``, until ``options.num_predict`` (then
  ``done_reason: "length"``) or the model's context length (an unbounded request simply runs
  until the client gives up)
- wrong script is plain text: see ``wrong_script_reply``

Rules (``add_rule(match, spec)``; script key ``rules: [{"match", "spec"}]``) answer every chat
request whose user messages contain ``match`` with ``spec``, before the queue and the default:
"the model always fails on this one message, and answers the others".

Model pool features (tests/test_model_pool*.py, bench/bench_pool.py):

- Loads: a chat request without messages loads the model (Ollama answers ``done_reason:
  "load"``, docs/facts.md). It is recorded in ``load_requests``, not in ``requests``, so the
  gateway's warm-up does not count as a turn; ``load_s`` is how long the load takes.
- Parallel slots (``turn_s``, ``num_parallel``): an ASSUMED latency model, not a measurement.
  At most ``num_parallel`` turns run at once (more wait in the server's queue, like
  ``OLLAMA_NUM_PARALLEL``); a turn needs ``turn_s`` seconds alone and progresses at the rate
  1 / (turn_s · (1 + contention · (k − 1))) while k turns run on this host (contention 0.25:
  four parallel turns each take 1.75 × as long, 2.3 × the throughput of one slot).
- What the host serves: ``model`` (listed by ``/api/tags``, answered by ``/api/show``; any other
  name is a 404) and ``capabilities`` per host. ``stop()`` kills it mid-turn (connections
  dropped, like a killed ollama); ``start()`` afterwards revives it on the same port.
  ``answer_as``: a proxy in front that answers (loads) as another model than was asked for.

Run standalone: ``python tests/harness/ollama_standin.py --port 0 --script FILE.json`` prints
``OLLAMA_STANDIN_URL=http://127.0.0.1:PORT`` on stdout. The script file is re-read on every
request; whenever its content changes its queues replace the current ones. File keys:
``default``, ``capabilities``, ``model``, and one list of specs per endpoint name. A subprocess
test can also drive it over HTTP: ``POST /_standin/queue {"endpoint","specs"}``,
``GET /_standin/requests``, ``POST /_standin/reset``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import logging
import math
import random
import signal
import socket
import string
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Spec = dict[str, Any]
Hook = Callable[[dict[str, Any]], Spec | None]

VERSION = "0.30.0"
DEFAULT_MODEL = "gemma4:e4b"
DEFAULT_EMBED_MODEL = "embeddinggemma"
DEFAULT_CAPABILITIES: tuple[str, ...] = ("completion", "vision", "audio", "tools", "thinking")
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_CRASH_MESSAGE = "llama runner process has terminated: exit status 2"
DEFAULT_NUM_CTX = 4096  # Ollama's default on machines with < 23 GiB VRAM
ENDPOINTS = ("root", "version", "tags", "show", "chat", "embed")
_CONTROL_PREFIX = "/_standin/"


# ---------------------------------------------------------------- spec helpers


def text_reply(text: str, *, chunks: int | None = None, thinking: str | None = None) -> Spec:
    spec: Spec = {"text": text}
    if chunks is not None:
        spec["chunks"] = chunks
    if thinking is not None:
        spec["thinking"] = thinking
    return spec


def tool_reply(*calls: dict[str, Any], text: str = "") -> Spec:
    """``tool_reply({"name": "dispatch", "arguments": {...}}, ...)``."""
    return {"tool_calls": [dict(c) for c in calls], "text": text}


def empty_reply() -> Spec:
    return {"empty": True}


def http_error(status: int, message: str) -> Spec:
    return {"error": message, "status": status}


def busy() -> Spec:
    return http_error(503, BUSY_MESSAGE)


def runner_crash() -> Spec:
    return http_error(500, RUNNER_CRASH_MESSAGE)


def stream_error(message: str = RUNNER_CRASH_MESSAGE, after_text: str = "Partial ") -> Spec:
    return {"error": message, "status": 500, "after_text": after_text}


def delayed(seconds: float, spec: Spec | None = None) -> Spec:
    return {**(spec or {}), "delay": seconds}


def garbage() -> Spec:
    return {"garbage": True}


def close_abruptly(*, partial: bool = False) -> Spec:
    return {"close": True, "partial": partial}


def raw(status: int, body: str, content_type: str = "application/json; charset=utf-8") -> Spec:
    return {"raw": {"status": status, "body": body, "content_type": content_type}}


def echo_reply(prefix: str = "") -> Spec:
    """The model repeats its instructions (the request's system prompt) as its answer."""
    return {"echo": True, "text": prefix}


def text_tool_call(
    name: str, arguments: dict[str, Any], *, syntax: str = "gemma", text: str = ""
) -> Spec:
    """A tool call leaked into ``content`` (``syntax``: "gemma" native form or "json")."""
    return {
        "tool_call_text": {"name": name, "arguments": arguments},
        "syntax": syntax,
        "text": text,
    }


def endless_reply(word: str = "Stay safe and wait. ", token_s: float = 0.002) -> Spec:
    return {"endless": True, "text": word, "token_s": token_s}


def wrong_script_reply() -> Spec:
    """A Bengali reply with Turkish words in it (seen from a real small model)."""
    return text_reply("আমরা আসছি। Lütfen bekleyin, yardım geliyor ve güvende kalın. ছাদে থাকুন।")


def gemma_tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    """Gemma 4's native call syntax: strings quoted with ``<|"|>``, other values bare."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return f'<|"|>{v}<|"|>'
        return json.dumps(v)

    args = ",".join(f"{k}:{value(v)}" for k, v in arguments.items())
    return f"<|tool_call>call:{name}{{{args}}}<tool_call|>"


def json_tool_call_text(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


# ---------------------------------------------------------------- wire helpers


def rfc3339_now() -> str:
    """Go's time.Time JSON form (RFC3339Nano, UTC) with nanosecond digits."""
    ns = time.time_ns()
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


_B64 = set(string.ascii_letters + string.digits + "+/")


def go_base64_error(data: str) -> int | None:
    """Offset Go's base64.StdEncoding.Decode reports for ``data``, or None when it decodes.

    Port of encoding/base64 decodeQuantum (padded standard alphabet, CR/LF ignored): what
    encoding/json does for a []byte field such as a message's ``images``.
    """
    src = data.encode("utf-8", "surrogatepass")
    si = 0
    n = len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return None
                return si - j
            c = src[si]
            si += 1
            if chr(c) in _B64:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != ord("="):
                return si - 1
            if j in (0, 1):
                return si - 1
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    return n
                if src[si] != ord("="):
                    return si - 1
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                return si
            return None


def normalise_name(name: str) -> str:
    """``embeddinggemma`` and ``embeddinggemma:latest`` name the same model."""
    name = name.strip()
    if not name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def _tokens(text: str) -> list[str]:
    out = []
    for raw_tok in text.lower().split():
        tok = raw_tok.strip(string.punctuation + "।॥،؟")
        if tok:
            out.append(tok)
    return out


def embed_text(text: str, dim: int) -> list[float]:
    """Deterministic, L2-normalised, lexically meaningful vector (feature hashing).

    Texts sharing words get a higher cosine similarity, so retrieval tests behave sensibly.
    """
    vec = [0.0] * dim
    toks = _tokens(text) or [f"\x00{text}"]
    for tok in toks:
        digest = hashlib.sha256(tok.encode("utf-8")).digest()
        rng = random.Random(digest)
        for _ in range(16):
            vec[rng.randrange(dim)] += 1.0 if rng.random() < 0.5 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec[int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % dim] = 1.0
        return vec
    return [v / norm for v in vec]


def _tool_call_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "call_" + "".join(random.choice(alphabet) for _ in range(8))


def _split_chunks(text: str, chunks: int | None) -> list[str]:
    if not text:
        return []
    if chunks is None or chunks <= 0:
        parts: list[str] = []
        word = ""
        for ch in text:
            word += ch
            if ch.isspace():
                parts.append(word)
                word = ""
        if word:
            parts.append(word)
        return parts
    size = max(1, math.ceil(len(text) / chunks))
    return [text[i : i + size] for i in range(0, len(text), size)]


# ---------------------------------------------------------------- models and records


@dataclass
class ModelEntry:
    name: str
    family: str = "gemma4"
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"
    capabilities: list[str] = field(default_factory=lambda: list(DEFAULT_CAPABILITIES))
    size: int = 9_608_000_000
    context_length: int = 131072
    embedding_length: int = 2560
    model_info_null: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization_level,
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None
    time: float  # time.time()
    headers: dict[str, str]

    @property
    def endpoint(self) -> str:
        return _endpoint_for(self.path)

    def images(self) -> list[bytes]:
        """Decoded bytes of every messages[].images[] entry (chat) in order."""
        out: list[bytes] = []
        if not isinstance(self.body, dict):
            return out
        for msg in self.body.get("messages") or []:
            if isinstance(msg, dict):
                out.extend(base64.b64decode(img) for img in msg.get("images") or [])
        return out

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body, "time": self.time}


def decode_images(body: dict[str, Any]) -> list[bytes]:
    return RecordedRequest("POST", "/api/chat", body, 0.0, {}).images()


def _endpoint_for(path: str) -> str:
    return {
        "/": "root",
        "/api/version": "version",
        "/api/tags": "tags",
        "/api/show": "show",
        "/api/chat": "chat",
        "/api/embed": "embed",
    }.get(path.split("?", 1)[0], "other")


class _Abort(Exception):
    """Raised inside a handler to drop the connection without a (complete) response."""


# ---------------------------------------------------------------- the server


class OllamaStandIn:
    """Threaded HTTP server on 127.0.0.1 speaking Ollama's API; usable as a context manager."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        capabilities: tuple[str, ...] | list[str] = DEFAULT_CAPABILITIES,
        embed_model: str = DEFAULT_EMBED_MODEL,
        embed_dim: int = 768,
        default: Spec | None = None,
        hook: Hook | None = None,
        script_path: Path | str | None = None,
        port: int = 0,
        version: str = VERSION,
        tokens_per_image: int = 256,
        default_num_ctx: int = DEFAULT_NUM_CTX,
        turn_s: float | None = None,
        num_parallel: int = 1,
        contention: float = 0.25,
        load_s: float = 0.0,
        answer_as: str | None = None,
    ) -> None:
        self.model = model
        self.embed_model = embed_model
        self.embed_dim = embed_dim
        self.version = version
        self.tokens_per_image = tokens_per_image
        self.default_num_ctx = default_num_ctx
        self.hook: Hook | None = hook
        self.script_path = Path(script_path) if script_path is not None else None
        self._lock = threading.RLock()
        self._models: dict[str, ModelEntry] = {}
        self._queues: dict[str, deque[Spec]] = {e: deque() for e in ENDPOINTS}
        self._default: Spec = default if default is not None else text_reply("OK")
        self._rules: list[tuple[str, Spec]] = []
        self._requests: list[RecordedRequest] = []
        self._script_text: str | None = None
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._cond = threading.Condition(self._lock)
        self.turn_s = turn_s
        self.num_parallel = num_parallel
        self.contention = contention
        self.load_s = load_s
        self.answer_as = answer_as  # a proxy that answers as another model (None: as asked)
        self._loads: list[RecordedRequest] = []
        self._running = 0  # turns in progress (the latency model's k)
        self.max_running = 0  # the most turns that ran at once
        self.add_model(ModelEntry(name=model, capabilities=list(capabilities)))
        self.add_model(
            ModelEntry(
                name=embed_model,
                family="gemma3",
                parameter_size="307.58M",
                quantization_level="BF16",
                capabilities=["embedding"],
                size=621_875_000,
                context_length=2048,
                embedding_length=embed_dim,
            )
        )

    # -- configuration -------------------------------------------------------------

    def add_model(self, entry: ModelEntry) -> None:
        with self._lock:
            self._models[normalise_name(entry.name)] = entry

    def remove_model(self, name: str) -> None:
        with self._lock:
            self._models.pop(normalise_name(name), None)

    def get_model(self, name: str) -> ModelEntry | None:
        with self._lock:
            return self._models.get(normalise_name(name))

    def set_capabilities(self, capabilities: list[str] | tuple[str, ...], model: str = "") -> None:
        entry = self.get_model(model or self.model)
        if entry is None:
            raise KeyError(model or self.model)
        with self._lock:
            entry.capabilities = list(capabilities)

    def set_default(self, spec: Spec) -> None:
        with self._lock:
            self._default = dict(spec)

    def push(self, endpoint: str, *specs: Spec) -> None:
        if endpoint not in self._queues:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
        with self._lock:
            self._queues[endpoint].extend(dict(s) for s in specs)

    def push_chat(self, *specs: Spec) -> None:
        self.push("chat", *specs)

    def add_rule(self, match: str, spec: Spec) -> None:
        """Every chat request whose user messages contain ``match`` gets ``spec`` (first rule
        wins), before the queue and the default: a message the model always fails on."""
        with self._lock:
            self._rules.append((match, dict(spec)))

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self, endpoint: str = "chat") -> int:
        with self._lock:
            return len(self._queues[endpoint])

    def reset(self) -> None:
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._requests.clear()
            self._rules.clear()

    # -- records ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests_to("chat")]

    def last_chat(self) -> dict[str, Any]:
        bodies = self.chat_requests
        if not bodies:
            raise AssertionError("the stand-in received no /api/chat request")
        last = bodies[-1]
        assert isinstance(last, dict)
        return last

    @property
    def load_requests(self) -> list[RecordedRequest]:
        """Chat requests without messages (model loads), in arrival order."""
        with self._lock:
            return list(self._loads)

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, n: int, endpoint: str | None = None, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self._requests if endpoint is None or r.endpoint == endpoint]
                if len(got) >= n:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waited {timeout}s for {n} request(s), got {len(got)}")
                self._cond.wait(left)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OllamaStandIn:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.standin = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ollama-standin:{self.port}",
            daemon=True,
        )
        self._thread.start()
        log.info("ollama stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Kill the host: in-flight requests are dropped mid-turn. ``start()`` revives it on
        the same port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._port = int(server.server_address[1])
        self._stopping.set()
        server.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # keep-alive connections would otherwise still be served
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("ollama stand-in stopped")

    def __enter__(self) -> OllamaStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals used by the handler ------------------------------------------------

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            is_load = (
                req.endpoint == "chat"
                and isinstance(req.body, dict)
                and isinstance(req.body.get("messages", []), list)
                and not req.body.get("messages")
            )
            (self._loads if is_load else self._requests).append(req)
            self._cond.notify_all()

    def _run_turn(self) -> None:
        """The parallel-slot latency model (see the module doc): wait for a slot, then progress
        at 1 / (turn_s · (1 + contention · (k − 1))) per second with k turns running."""
        assert self.turn_s is not None
        with self._cond:
            while self._running >= self.num_parallel:
                if self._stopping.is_set():
                    raise _Abort
                self._cond.wait(0.05)
            self._running += 1
            self.max_running = max(self.max_running, self._running)
        try:
            done, step = 0.0, 0.01
            while done < 1.0:
                if self._stopping.wait(step):
                    raise _Abort  # killed mid-turn: no answer
                with self._lock:
                    k = self._running
                done += step / (self.turn_s * (1 + self.contention * (k - 1)))
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _maybe_reload(self) -> None:
        if self.script_path is None:
            return
        try:
            text = self.script_path.read_text(encoding="utf-8")
        except OSError:
            return
        with self._lock:
            if text == self._script_text:
                return
            try:
                script = json.loads(text)
            except json.JSONDecodeError as exc:
                log.warning("stand-in script %s is not JSON yet: %s", self.script_path, exc)
                return
            self._script_text = text
            self._apply_script(script)

    def _apply_script(self, script: dict[str, Any]) -> None:
        with self._lock:
            if "default" in script:
                self._default = dict(script["default"])
            if "capabilities" in script:
                entry = self._models.get(normalise_name(self.model))
                if entry is not None:
                    entry.capabilities = list(script["capabilities"])
            for name in ENDPOINTS:
                if name in script:
                    self._queues[name] = deque(dict(s) for s in script[name])
            if "rules" in script:
                self._rules = [(str(r["match"]), dict(r["spec"])) for r in script["rules"]]

    def _next_spec(self, endpoint: str, body: Any) -> Spec | None:
        with self._lock:
            if endpoint == "chat" and self._rules and isinstance(body, dict):
                said = _user_text(body)
                for match, spec in self._rules:
                    if match in said:
                        return dict(spec)
            queue = self._queues.get(endpoint)
            if queue:
                return queue.popleft()
            hook = self.hook if endpoint == "chat" else None
            default = dict(self._default) if endpoint == "chat" else None
        if hook is not None and isinstance(body, dict):
            spec = hook(body)
            if spec is not None:
                return spec
        return default

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: OllamaStandIn

    def process_request(self, request: Any, client_address: Any) -> None:
        self.standin._track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.standin._track(request, False)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"
    sys_version = ""
    server: _Server

    # -- plumbing ---------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("stand-in %s - " + format, self.address_string(), *args)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _Abort:
            self.close_connection = True
        except OSError:
            self.close_connection = True  # the client gave up (timeout) or we are stopping

    @property
    def standin(self) -> OllamaStandIn:
        return self.server.standin

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_bytes(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self._send_bytes(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _stream_line(self, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        self._stream_raw(data)

    def _stream_raw(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    # -- dispatch -----------------------------------------------------------------

    def do_HEAD(self) -> None:
        if self.path in ("/", "/api/version"):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send_bytes(404, b"", "text/plain")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw_body = self._read_body() if method == "POST" else b""
        path = self.path.split("?", 1)[0]
        if path.startswith(_CONTROL_PREFIX):
            self._control(method, path, raw_body)
            return
        st = self.standin
        st._maybe_reload()
        body: Any = None
        bad_json: str | None = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                body = raw_body.decode("utf-8", "replace")
                bad_json = f"invalid character at offset {getattr(exc, 'pos', 0)}"
        st._record(RecordedRequest(method, path, body, time.time(), dict(self.headers.items())))
        routes: dict[tuple[str, str], Callable[[Any, str | None], None]] = {
            ("GET", "/"): self._root,
            ("GET", "/api/version"): self._version,
            ("GET", "/api/tags"): self._tags,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/embed"): self._embed,
        }
        route = routes.get((method, path))
        if route is None:
            if any(p == path for _, p in routes):
                self._send_bytes(405, b"405 method not allowed", "text/plain")
            else:
                self._send_bytes(404, b"404 page not found", "text/plain")
            return
        route(body, bad_json)

    def _control(self, method: str, path: str, raw_body: bytes) -> None:
        st = self.standin
        if method == "GET" and path == "/_standin/requests":
            self._send_json(200, [r.as_json() for r in st.requests])
        elif method == "POST" and path == "/_standin/queue":
            data = json.loads(raw_body or b"{}")
            st.push(str(data.get("endpoint", "chat")), *data.get("specs", []))
            self._send_json(200, {"ok": True})
        elif method == "POST" and path == "/_standin/default":
            st.set_default(json.loads(raw_body or b"{}"))
            self._send_json(200, {"ok": True})
        elif method == "POST" and path == "/_standin/rule":
            data = json.loads(raw_body or b"{}")
            st.add_rule(str(data["match"]), dict(data["spec"]))
            self._send_json(200, {"ok": True})
        elif method == "POST" and path == "/_standin/reset":
            st.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_bytes(404, b"404 page not found", "text/plain")

    # -- generic spec effects (shared by every endpoint) --------------------------------

    def _apply_transport_spec(self, spec: Spec | None, stream: bool) -> bool:
        """Apply delay/error/garbage/close/raw. True when the response has been sent."""
        if not spec:
            return False
        delay = float(spec.get("delay") or 0)
        if delay > 0:
            self.standin._sleep(delay)
            if self.standin._stopping.is_set():
                raise _Abort  # the server is going away: like a killed ollama, no answer
        if spec.get("close"):
            if spec.get("partial"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", "4096")
                self.end_headers()
                self.wfile.write(b'{"model":"' + self.standin.model.encode() + b'","mess')
            raise _Abort
        if "raw" in spec:
            r = spec["raw"]
            self._send_bytes(
                int(r.get("status", 200)),
                str(r.get("body", "")).encode(),
                str(r.get("content_type", "application/json; charset=utf-8")),
            )
            return True
        if spec.get("drip") and not stream:
            self._drip(float(spec["drip"]), int(spec.get("pieces", 10)))
            return True
        if spec.get("garbage"):
            if stream:
                self._start_stream()
                self._stream_raw(
                    b'{"model":"' + self.standin.model.encode() + b'","message":{"ro\n'
                )
                self._end_stream()
            else:
                self._send_bytes(
                    200, b'{"model":"gemma4:e4b","message":{"role":"assi', "application/json"
                )
            return True
        if "error" in spec and not (stream and spec.get("after_text")):
            self._error(int(spec.get("status", 500)), str(spec["error"]))
            return True
        return False

    def _endless(self, body: dict[str, Any], spec: Spec, name: str) -> tuple[str, str]:
        """Repeat ``text`` one token at a time until num_predict or the context runs out."""
        options = body.get("options") or {}
        limit = options.get("num_predict") if isinstance(options, dict) else None
        entry = self.standin.get_model(name)
        context = entry.context_length if entry is not None else DEFAULT_NUM_CTX
        tokens = int(limit) if isinstance(limit, int) and limit > 0 else context
        word = str(spec.get("text") or "Stay safe and wait. ")
        token_s = float(spec.get("token_s", 0.002))
        # Sleep in slices so a stop (or a client that gave up) ends the generation.
        waited, total = 0.0, tokens * token_s
        while waited < total:
            step = min(0.25, total - waited)
            self.standin._sleep(step)
            if self.standin._stopping.is_set():
                raise _Abort
            waited += step
        chars = tokens * 4
        text = (word * (chars // max(1, len(word)) + 1))[:chars]
        return text, "length"

    def _drip(self, seconds: float, pieces: int = 10) -> None:
        """A valid reply whose body trickles in over ``seconds`` (defeats per-read timeouts)."""
        st = self.standin
        body = json.dumps(
            {
                "model": st.model,
                "created_at": rfc3339_now(),
                "message": {"role": "assistant", "content": "slow"},
                "done": True,
                "done_reason": "stop",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        step = math.ceil(len(body) / pieces)
        for i in range(0, len(body), step):
            self.wfile.write(body[i : i + step])
            st._sleep(seconds / pieces)
            if st._stopping.is_set():
                raise _Abort

    # -- endpoints --------------------------------------------------------------------

    def _simple(self, endpoint: str, body: Any) -> bool:
        return self._apply_transport_spec(self.standin._next_spec(endpoint, body), False)

    def _root(self, body: Any, bad_json: str | None) -> None:
        if not self._simple("root", body):
            self._send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self, body: Any, bad_json: str | None) -> None:
        if not self._simple("version", body):
            self._send_json(200, {"version": self.standin.version})

    def _tags(self, body: Any, bad_json: str | None) -> None:
        if self._simple("tags", body):
            return
        with self.standin._lock:
            models = list(self.standin._models.values())
        now = rfc3339_now()
        self._send_json(
            200,
            {
                "models": [
                    {
                        "name": normalise_name(m.name),
                        "model": normalise_name(m.name),
                        "modified_at": now,
                        "size": m.size,
                        "digest": m.digest,
                        "details": m.details(),
                    }
                    for m in models
                ]
            },
        )

    def _show(self, body: Any, bad_json: str | None) -> None:
        if bad_json is not None or not isinstance(body, dict):
            self._error(400, bad_json or "missing request body")
            return
        name = str(body.get("model") or body.get("name") or "")
        if not name:
            self._error(400, "model is required")
            return
        if self._simple("show", body):
            return
        entry = self.standin.get_model(name)
        if entry is None:
            self._error(404, f"model '{name}' not found")
            return
        arch = entry.family
        model_info: dict[str, Any] | None = (
            None
            if entry.model_info_null
            else {
                "general.architecture": arch,
                "general.basename": entry.name.split(":")[0],
                "general.file_type": 15,
                "general.quantization_version": 2,
                f"{arch}.context_length": entry.context_length,
                f"{arch}.embedding_length": entry.embedding_length,
            }
        )
        self._send_json(
            200,
            {
                "license": "Gemma Terms of Use",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {entry.name}\n',
                "parameters": 'stop "<end_of_turn>"\ntemperature 1\ntop_k 64\ntop_p 0.95',
                "template": "{{ .Prompt }}",
                "details": entry.details(),
                "model_info": model_info,
                "capabilities": list(entry.capabilities),
                "modified_at": rfc3339_now(),
            },
        )

    def _embed(self, body: Any, bad_json: str | None) -> None:
        st = self.standin
        if bad_json is not None or not isinstance(body, dict):
            self._error(400, bad_json or "missing request body")
            return
        name = str(body.get("model") or "")
        if not name:
            self._error(400, "model is required")
            return
        entry = st.get_model(name)
        if entry is None:
            self._error(404, f"model '{name}' not found")
            return
        if "embedding" not in entry.capabilities:
            self._error(400, f"{name!r} does not support embeddings")
            return
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            texts = [raw_input] if raw_input else []
        elif isinstance(raw_input, list) and all(isinstance(t, str) for t in raw_input):
            texts = list(raw_input)
        elif raw_input is None:
            texts = []
        else:
            self._error(400, "invalid input type")
            return
        if self._simple("embed", body):
            return
        started = time.monotonic_ns()
        dims = body.get("dimensions")
        dim = st.embed_dim
        vectors = [embed_text(t, dim) for t in texts]
        if isinstance(dims, int) and 0 < dims < dim:
            vectors = [_renorm(v[:dims]) for v in vectors]
        self._send_json(
            200,
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": time.monotonic_ns() - started + 1_000_000,
                "load_duration": 500_000,
                "prompt_eval_count": sum(max(1, len(t) // 4) for t in texts),
            },
        )

    def _chat(self, body: Any, bad_json: str | None) -> None:
        st = self.standin
        if bad_json is not None:
            self._error(400, bad_json)
            return
        if not isinstance(body, dict):
            self._error(400, "missing request body")
            return
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            self._error(400, "json: cannot unmarshal messages")
            return
        for msg in messages:  # encoding/json decodes []byte images while binding: 400 first
            for img in (msg.get("images") or []) if isinstance(msg, dict) else []:
                if not isinstance(img, str):
                    self._error(400, "json: cannot unmarshal image into Go value of type []byte")
                    return
                pos = go_base64_error(img)
                if pos is not None:
                    self._error(400, f"illegal base64 data at input byte {pos}")
                    return
        name = str(body.get("model") or "")
        if not name:
            self._error(400, "model is required")
            return
        entry = st.get_model(name)
        if entry is None:
            self._error(404, f"model '{name}' not found")
            return
        caps = entry.capabilities
        think = body.get("think")
        thinking_on = "thinking" in caps and think is not False and think != "false"
        if think not in (None, False) and "thinking" not in caps:
            self._error(400, f'"{name}" does not support thinking')
            return
        if "completion" not in caps:
            self._error(400, f'"{name}" does not support chat')
            return
        if body.get("tools") and "tools" not in caps:
            self._error(400, f"{name} does not support tools")
            return
        stream = body.get("stream", True) is not False
        if not messages:
            if st.load_s > 0:
                st._sleep(st.load_s)
                if st._stopping.is_set():
                    raise _Abort
            self._send_json(
                200,
                {
                    "model": st.answer_as or name,
                    "created_at": rfc3339_now(),
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "load",
                },
            )
            return
        if st.turn_s is not None:
            st._run_turn()
        spec = st._next_spec("chat", body) or {}
        if self._apply_transport_spec(spec, stream):
            return
        if not any(
            k in spec
            for k in ("text", "tool_calls", "empty", "error", "echo", "tool_call_text", "endless")
        ):
            with st._lock:  # e.g. a bare {"delay": 3}: answer with the default after waiting
                spec = {**st._default, **spec}
        self._chat_reply(body, name, spec, stream, thinking_on)

    def _chat_reply(
        self, body: dict[str, Any], name: str, spec: Spec, stream: bool, thinking_on: bool
    ) -> None:
        st = self.standin
        content = "" if spec.get("empty") else str(spec.get("text", ""))
        done_reason = str(spec.get("done_reason") or "stop")
        if spec.get("echo"):
            system = next(
                (
                    str(m.get("content") or "")
                    for m in body["messages"]
                    if m.get("role") == "system"
                ),
                "You are a helpful assistant.",
            )
            content += system
        if spec.get("tool_call_text"):
            call = spec["tool_call_text"]
            render = json_tool_call_text if spec.get("syntax") == "json" else gemma_tool_call_text
            content += render(str(call["name"]), dict(call.get("arguments") or {}))
        if spec.get("endless"):
            content, done_reason = self._endless(body, spec, name)
            spec = {**spec, "eval_count": max(1, len(content) // 4)}
        calls = [] if spec.get("empty") else list(spec.get("tool_calls") or [])
        tool_calls = [
            {
                "id": _tool_call_id(),
                "function": {
                    "index": i,
                    "name": str(c["name"]),
                    "arguments": c.get("arguments", {}),
                },
            }
            for i, c in enumerate(calls)
        ]
        thinking = spec.get("thinking")
        if thinking is None and thinking_on and not spec.get("empty"):
            thinking = "The user needs help; I will answer briefly."
        prompt_tokens = int(spec.get("prompt_eval_count") or prompt_estimate(body, st))
        eval_count = int(spec.get("eval_count") or max(1, len(content) // 4 + 12 * len(calls)))
        prompt_ns = prompt_tokens * 2_000_000
        eval_ns = eval_count * 20_000_000
        load_ns = 50_000_000
        metrics = {
            "done": True,
            "done_reason": done_reason,
            "total_duration": load_ns + prompt_ns + eval_ns + 1_000_000,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            self._send_json(
                200, {"model": name, "created_at": rfc3339_now(), "message": message, **metrics}
            )
            return
        self._start_stream()

        def line(msg: dict[str, Any], done: bool = False) -> None:
            obj: dict[str, Any] = {"model": name, "created_at": rfc3339_now(), "message": msg}
            obj.update(metrics if done else {"done": False})
            self._stream_line(obj)

        if thinking:
            line({"role": "assistant", "content": "", "thinking": thinking})
        after_text = spec.get("after_text")
        if "error" in spec and after_text:
            for part in _split_chunks(str(after_text), spec.get("chunks")):
                line({"role": "assistant", "content": part})
            self._stream_line({"error": str(spec["error"])})
            self._end_stream()
            return
        for part in _split_chunks(content, spec.get("chunks")):
            line({"role": "assistant", "content": part})
        if tool_calls:
            line({"role": "assistant", "content": "", "tool_calls": tool_calls})
        line({"role": "assistant", "content": ""}, done=True)
        self._end_stream()


def _user_text(body: dict[str, Any]) -> str:
    return "\n".join(
        str(m.get("content") or "")
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "user"
    )


def _renorm(v: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


def prompt_estimate(body: dict[str, Any], st: OllamaStandIn) -> int:
    """Prompt tokens ≈ characters / 4 (+ a fixed cost per image), capped at num_ctx.

    Ollama truncates an over-long prompt from the front, so prompt_eval_count never exceeds
    num_ctx: a count at the cap is the tell-tale of silent truncation.
    """
    chars = 0
    images = 0
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        chars += len(str(msg.get("content") or "")) + len(str(msg.get("role") or "")) + 8
        if msg.get("tool_calls"):
            chars += len(json.dumps(msg["tool_calls"]))
        images += len(msg.get("images") or [])
    if body.get("tools"):
        chars += len(json.dumps(body["tools"]))
    options = body.get("options") or {}
    num_ctx = options.get("num_ctx") if isinstance(options, dict) else None
    cap = int(num_ctx) if isinstance(num_ctx, int) and num_ctx > 0 else st.default_num_ctx
    return max(1, min(cap, chars // 4 + images * st.tokens_per_image))


# ---------------------------------------------------------------- pytest fixture

try:
    import pytest
except ImportError:  # standalone use without pytest installed
    pass
else:

    @pytest.fixture(name="ollama_standin")
    def ollama_standin_fixture() -> Iterator[OllamaStandIn]:
        """A started stand-in per test. Import it as ``ollama_standin_fixture`` (no F811 at the
        use sites; pytest registers it under the name ``ollama_standin``)."""
        with OllamaStandIn() as standin:
            yield standin

    ollama_standin = ollama_standin_fixture

    @pytest.fixture(name="standin")
    def standin_fixture(ollama_standin: OllamaStandIn) -> OllamaStandIn:
        """The same stand-in under the shorter name the subprocess tests use."""
        return ollama_standin


# ---------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ollama API stand-in for tests and benches")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--script", type=Path, help="JSON behaviour file, re-read per request")
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--capabilities", default=",".join(DEFAULT_CAPABILITIES))
    parser.add_argument("--embed-dim", type=int, default=768)
    parser.add_argument("--text", default="OK", help="default chat reply")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    standin = OllamaStandIn(
        model=args.model,
        capabilities=[c for c in args.capabilities.split(",") if c],
        embed_dim=args.embed_dim,
        default=text_reply(args.text),
        script_path=args.script,
        port=args.port,
    )
    standin.start()
    standin._maybe_reload()
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(standin.port), encoding="utf-8")
        tmp.replace(args.port_file)
    print(f"OLLAMA_STANDIN_URL={standin.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(0.2):
        pass
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
