"""Lifeline's model client: the only module that imports ``ollama``.

Wraps ``ollama.AsyncClient`` (0.6.3) for Gemma 4 E4B served by Ollama and turns every failure
into one of three classified errors, so callers decide retry vs. give up without knowing HTTP:

- ``ModelUnavailable`` (transient): connection refused, timeouts, 5xx, busy, garbage/truncated
  responses, an error line in the middle of a stream.
- ``ModelRejected`` (permanent for this request): 400 (bad media, "does not support tools"),
  404 (model not found), invalid base64 media caught before sending.
- ``BadTurn`` / ``EmptyTurn``: HTTP 200 but no usable reply (nothing, or a reply the guard
  refused). A failure of *that message*, not of the server: the same prompt tends to fail again
  while other prompts are answered, so it spends the message's attempts and never pauses the
  model for everyone (``outage = False``).

Facts this relies on (docs/facts.md): ``think=False`` always (thinking is on by default for
Gemma 4 and eats the turn), ``num_ctx`` set explicitly (over-long prompts are cut from the front
silently: a ``prompt_eval_count`` near ``num_ctx`` is the tell-tale), audio and images both go in
``images`` as plain base64 (no data-URL prefix), tool results are ``{"role": "tool",
"tool_name": …}`` right after the assistant message holding the calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import ollama
import pydantic

from config.settings import ModelSettings

log = logging.getLogger(__name__)

# What Lifeline needs from the chat model (docs/facts.md: gemma4:e4b reports all of these).
REQUIRED_CAPABILITIES: frozenset[str] = frozenset({"completion", "tools", "vision", "audio"})
TEXT_CAPABILITIES: frozenset[str] = frozenset({"completion", "tools"})
TRUNCATION_WARN_RATIO = 0.95
# Keys of a JSON-schema property that ollama-python 0.6.3's Tool model keeps; others are dropped
# silently before the request leaves the process (pydantic extra="ignore").
_CLIENT_PROPERTY_KEYS = frozenset({"type", "items", "description", "enum"})
_TRANSIENT_STATUS = frozenset({408, 425, 429, 499, 500, 502, 503, 504})
_DEFAULT_PORT = 11434


# ------------------------------------------------------------------ errors


class ModelError(Exception):
    """Base of every model failure. ``transient``: worth retrying later; ``outage``: the server
    (not this message) is at fault, so the other messages should not try it now either."""

    transient: bool = True
    outage: bool = True

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class ModelUnavailable(ModelError):
    """Model server unreachable, slow, busy, crashed or answering garbage (transient)."""

    transient = True


class ModelRejected(ModelError):
    """The request itself is wrong for this server/model (permanent for this request)."""

    transient = False
    outage = False


class BadTurn(ModelError):
    """The server answered, but not usably for this message (empty, or refused by the reply
    guard): the message's failure, retried with backoff behind the others."""

    transient = True
    outage = False

    def __init__(self, reason: str, *, result: ChatResult | None = None) -> None:
        super().__init__(reason, status=200)
        self.result = result


class EmptyTurn(BadTurn):
    """HTTP 200 but no content and no tool calls: a dropped tool call."""


# ------------------------------------------------------------------ results


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


_NOT_PROBED = ModelHealth(False, False, frozenset(), None, "not probed yet")


# ------------------------------------------------------------------ message helpers


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


def tool_result_message(name: str, content: str) -> dict[str, Any]:
    """A tool result; place it right after the assistant message holding the call."""
    return {"role": "tool", "tool_name": name, "content": content}


def _host_url(host: str) -> str:
    """The base URL ollama-python 0.6.3 derives from ``host`` (same defaults as its _parse_host:
    bare ``host`` → port 11434, ``http://host`` → 80, ``https://host`` → 443)."""
    port = _DEFAULT_PORT
    scheme, _, hostport = host.strip().partition("://")
    if not hostport:
        scheme, hostport = "http", host.strip()
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    split = urllib.parse.urlsplit(f"{scheme}://{hostport}")
    hostname = split.hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    path = split.path.rstrip("/")
    return f"{scheme}://{hostname}:{split.port or port}{path}"


# ------------------------------------------------------------------ the client


class LLM:
    """Async client for one Ollama chat model; every call bounded by ``timeout_s``."""

    def __init__(self, settings: ModelSettings) -> None:
        self._settings = settings
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._base_url = _host_url(settings.host)
        # trust_env=False: the only peer is the configured host, never an env proxy (offline).
        self._client = ollama.AsyncClient(
            host=self._base_url, timeout=self._timeout, trust_env=False
        )
        self._http = httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout, trust_env=False
        )
        self._health = _NOT_PROBED
        self._available: bool | None = None
        self._warned_schema: set[str] = set()

    @property
    def health(self) -> ModelHealth:
        return self._health

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]
        await self._http.aclose()

    # -- health -------------------------------------------------------------------------

    async def probe(self) -> ModelHealth:
        """Version + capabilities of the configured model. Never raises on network errors."""
        s = self._settings
        version: str | None = None
        try:
            async with asyncio.timeout(s.timeout_s):
                resp = await self._http.get("/api/version")
                resp.raise_for_status()
                version = str(resp.json().get("version") or "") or None
        except (httpx.HTTPError, TimeoutError, ValueError, AttributeError) as exc:
            health = ModelHealth(False, False, frozenset(), None, f"unreachable: {_describe(exc)}")
            return self._set_health(health)
        try:
            async with asyncio.timeout(s.timeout_s):
                show = await self._client.show(s.name)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                detail = f"model {s.name!r} not found on the server (ollama pull {s.name})"
            else:
                detail = f"show failed: HTTP {exc.status_code} {exc.error}"
            return self._set_health(ModelHealth(True, False, frozenset(), version, detail))
        except (ConnectionError, httpx.HTTPError, TimeoutError, ValueError) as exc:
            detail = f"show failed: {_describe(exc)}"
            return self._set_health(ModelHealth(False, False, frozenset(), version, detail))
        caps = frozenset(show.capabilities or ())
        missing = REQUIRED_CAPABILITIES - caps
        detail = "ok" if not missing else f"model lacks: {', '.join(sorted(missing))}"
        return self._set_health(ModelHealth(True, True, caps, version, detail))

    def _set_health(self, health: ModelHealth) -> ModelHealth:
        old, self._health = self._health, health
        if (old.reachable, old.model_present, old.capabilities, old.detail) != (
            health.reachable,
            health.model_present,
            health.capabilities,
            health.detail,
        ):
            level = logging.INFO if health.ok else logging.WARNING
            log.log(
                level,
                "model health: reachable=%s model=%s present=%s version=%s caps=%s (%s)",
                health.reachable,
                self._settings.name,
                health.model_present,
                health.version,
                ",".join(sorted(health.capabilities)) or "-",
                health.detail,
            )
        return health

    def _mark(self, available: bool, reason: str = "") -> None:
        if self._available == available:
            return
        self._available = available
        if available:
            log.info("model %s answering", self._settings.name)
        else:
            log.warning("model %s unavailable: %s", self._settings.name, reason)

    # -- chat ----------------------------------------------------------------------------

    async def chat(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        num_predict: int | None = None,
    ) -> ChatResult:
        """One non-streaming model turn. Raises ModelUnavailable / ModelRejected / EmptyTurn.

        ``num_predict`` bounds the generation (a model that does not stop otherwise holds the
        GPU until ``timeout_s``); without it, the staff reply budget applies."""
        s = self._settings
        options: dict[str, Any] = {
            "num_ctx": s.num_ctx,
            "temperature": s.temperature,
            "num_predict": num_predict or s.staff_reply_tokens,
        }
        wire_messages = self._prepare_messages(messages)
        if tools:
            self._check_tools(tools)
        started = time.monotonic()
        try:
            async with asyncio.timeout(s.timeout_s):
                resp = await self._client.chat(
                    model=s.name,
                    messages=wire_messages,
                    tools=tools or None,
                    stream=False,
                    think=False,
                    options=options,
                    keep_alive=s.keep_alive,
                )
        except Exception as exc:
            err = self._classify(exc)
            if err.transient:
                self._mark(False, err.reason)
            raise err from exc
        total_s = time.monotonic() - started
        self._mark(True)
        result = self._result(resp, total_s)
        self._log_budget(result)
        if not result.tool_calls and not result.content.strip():
            log.warning(
                "model returned an empty turn (no content, no tool calls) after %.1fs: "
                "a dropped tool call",
                total_s,
            )
            raise EmptyTurn("empty reply: no content and no tool calls", result=result)
        return result

    def _prepare_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
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

    def _check_tools(self, tools: list[dict[str, Any]]) -> None:
        for tool in tools:
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(fn, Mapping) or not fn.get("name"):
                raise ModelRejected(f"tool schema without function.name: {tool!r}")
            name = str(fn["name"])
            if name in self._warned_schema:
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
                self._warned_schema.add(name)
                log.warning(
                    "tool %s: ollama-python drops schema keys %s; keep schemas flat "
                    "(type/description/enum) and validate arguments server-side",
                    name,
                    ", ".join(dropped),
                )

    def _result(self, resp: ollama.ChatResponse, total_s: float) -> ChatResult:
        msg = resp.message
        calls = tuple(
            ToolCall(name=tc.function.name, arguments=dict(tc.function.arguments))
            for tc in (msg.tool_calls or ())
        )
        raw: dict[str, Any] = {"role": "assistant", "content": msg.content or ""}
        if calls:
            raw["tool_calls"] = [
                {"function": {"name": c.name, "arguments": c.arguments}} for c in calls
            ]
        return ChatResult(
            content=msg.content or "",
            tool_calls=calls,
            prompt_eval_count=int(resp.prompt_eval_count or 0),
            eval_count=int(resp.eval_count or 0),
            total_s=total_s,
            raw_message=raw,
            done_reason=str(resp.done_reason or "stop"),
        )

    def _log_budget(self, result: ChatResult) -> None:
        num_ctx = self._settings.num_ctx
        log.info(
            "model turn: prompt_eval_count=%d/%d eval_count=%d tool_calls=%d done=%s in %.2fs",
            result.prompt_eval_count,
            num_ctx,
            result.eval_count,
            len(result.tool_calls),
            result.done_reason,
            result.total_s,
        )
        if result.prompt_eval_count >= TRUNCATION_WARN_RATIO * num_ctx:
            log.warning(
                "prompt used %d of num_ctx=%d tokens: Ollama probably cut the front of the "
                "prompt (system prompt/protocols) silently — shrink the prompt",
                result.prompt_eval_count,
                num_ctx,
            )

    # -- embeddings ---------------------------------------------------------------------

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                resp = await self._client.embed(model=model, input=texts)
        except Exception as exc:
            raise self._classify(exc) from exc
        vectors = [list(map(float, v)) for v in resp.embeddings]
        if len(vectors) != len(texts):
            raise ModelUnavailable(f"embed returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors

    # -- error classification ----------------------------------------------------------------

    def _classify(self, exc: BaseException) -> ModelError:
        """Map whatever ollama/httpx/pydantic raised to a ModelError. Re-raises cancellation."""
        if isinstance(exc, asyncio.CancelledError):
            raise exc
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, ollama.ResponseError):
            status = exc.status_code
            detail = f"HTTP {status}: {exc.error}" if status > 0 else f"stream error: {exc.error}"
            if status == -1 or status in _TRANSIENT_STATUS or status >= 500:
                return ModelUnavailable(detail, status=status)
            return ModelRejected(detail, status=status)
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            return ModelUnavailable(f"timed out after {self._settings.timeout_s:g}s")
        if isinstance(exc, ConnectionError | httpx.ConnectError):
            return ModelUnavailable(f"cannot connect to {self._base_url}")
        if isinstance(exc, httpx.HTTPError):  # RemoteProtocolError, ReadError, …
            return ModelUnavailable(f"connection broke: {_describe(exc)}")
        if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
            return ModelUnavailable(f"malformed response: {_describe(exc)}")
        if isinstance(exc, ollama.RequestError | ValueError | TypeError):
            return ModelRejected(f"request not sendable: {_describe(exc)}")
        return ModelUnavailable(f"unexpected error: {_describe(exc)}")


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


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
