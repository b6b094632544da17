"""Lifeline's model client: the only code that talks to Ollama (``ollama`` is imported only
in this package).

Wraps ``ollama.AsyncClient`` (0.6.3) for Gemma 4 E4B served by Ollama; every failure leaves as one
of the classified errors of bot/llm/errors.py.

Facts this relies on (docs/facts.md): ``think=False`` always (thinking is on by default for
Gemma 4 and eats the turn), ``num_ctx`` set explicitly (over-long prompts are cut from the front
silently: a ``prompt_eval_count`` near ``num_ctx`` is the tell-tale); the message form is
bot/llm/messages.py's.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from typing import Any

import httpx
import ollama

from bot.llm.errors import EmptyTurn, ModelError, ModelUnavailable, classify, describe
from bot.llm.messages import check_tools, wire_messages
from bot.llm.types import NOT_PROBED, REQUIRED_CAPABILITIES, ChatResult, ModelHealth, ToolCall
from config.settings import ModelSettings

log = logging.getLogger(__name__)

TRUNCATION_WARN_RATIO = 0.95
_DEFAULT_PORT = 11434


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


class LLM:
    """Async client for one Ollama chat model on one server (``host``, default the configured
    ``[model] host``); every call bounded by ``timeout_s``. The pool (bot/llm/pool.py) holds
    one per server."""

    def __init__(self, settings: ModelSettings, host: str | None = None) -> None:
        self._settings = settings
        self._timeout = httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
        self._base_url = _host_url(host or settings.host)
        # trust_env=False: the only peer is the configured host, never an env proxy (offline).
        self._client = ollama.AsyncClient(
            host=self._base_url, timeout=self._timeout, trust_env=False
        )
        self._http = httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout, trust_env=False
        )
        self._health = NOT_PROBED
        self._available: bool | None = None
        self._warned_schema: set[str] = set()

    @property
    def health(self) -> ModelHealth:
        return self._health

    @property
    def settings(self) -> ModelSettings:
        return self._settings

    @property
    def base_url(self) -> str:
        return self._base_url

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
            health = ModelHealth(False, False, frozenset(), None, f"unreachable: {describe(exc)}")
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
            detail = f"show failed: {describe(exc)}"
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
        wire = wire_messages(messages)
        if tools:
            check_tools(tools, self._warned_schema)
        started = time.monotonic()
        try:
            async with asyncio.timeout(s.timeout_s):
                resp = await self._client.chat(
                    model=s.name,
                    messages=wire,
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

    async def warm_up(self) -> str:
        """Load the model and keep it loaded for ``keep_alive``: a chat request without messages
        (docs/facts.md: Ollama loads the model and answers ``done_reason: "load"``). Bounded by
        ``warm_timeout_s``, not the turn timeout: a cold load takes long. Returns the model name
        the server answered for. Raises a ModelError."""
        s = self._settings
        body = {"model": s.name, "messages": [], "stream": False, "keep_alive": s.keep_alive}
        timeout = httpx.Timeout(s.warm_timeout_s, connect=s.connect_timeout_s)
        try:
            async with asyncio.timeout(s.warm_timeout_s):
                resp = await self._http.post("/api/chat", json=body, timeout=timeout)
            reply = resp.json() if resp.content else {}
            if resp.status_code >= 400:
                error = reply.get("error") if isinstance(reply, dict) else None
                exc: Exception = ollama.ResponseError(str(error or resp.text), resp.status_code)
            else:
                return str(reply.get("model") or "")
        except Exception as caught:  # noqa: BLE001 - classified right below
            exc = caught
        raise classify(exc, timeout_s=s.warm_timeout_s, base_url=self._base_url) from exc

    async def served_models(self) -> list[str]:
        """Names in ``/api/tags`` (what the server has), for the reason a model is refused;
        empty when it cannot be read."""
        try:
            async with asyncio.timeout(self._settings.timeout_s):
                resp = await self._http.get("/api/tags")
                resp.raise_for_status()
                models = resp.json().get("models") or []
        except (httpx.HTTPError, TimeoutError, ValueError, AttributeError):
            return []
        return [str(m.get("name") or m.get("model")) for m in models if isinstance(m, dict)]

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

    def _classify(self, exc: BaseException) -> ModelError:
        return classify(exc, timeout_s=self._settings.timeout_s, base_url=self._base_url)
