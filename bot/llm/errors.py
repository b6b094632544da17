"""Every model failure, classified at the boundary (bot/errors.py kinds) so callers decide retry
vs. give up by type, without knowing HTTP:

- ``ModelUnavailable`` (transient): connection refused, timeouts, 5xx, busy, garbage/truncated
  responses, an error line in the middle of a stream.
- ``ModelRejected`` (permanent for this request): 400 (bad media, "does not support tools"),
  404 (model not found), invalid base64 media caught before sending.
- ``BadTurn`` / ``EmptyTurn`` (transient): HTTP 200 but no usable reply (nothing, or a reply the
  guard refused). A failure of *that message*, not of the server: the same prompt tends to fail
  again while other prompts are answered, so it spends the message's attempts and never pauses
  the model for everyone (``outage = False``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
import ollama
import pydantic

from bot.errors import LifelineError, PermanentError, TransientError

if TYPE_CHECKING:
    from bot.llm.types import ChatResult

_TRANSIENT_STATUS = frozenset({408, 425, 429, 499, 500, 502, 503, 504})


class ModelError(LifelineError):
    """Base of every model failure. ``transient`` (from the kind): worth retrying later;
    ``outage``: the server (not this message) is at fault, so the other messages should not
    try it now either."""

    outage: bool = True

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ModelUnavailable(ModelError, TransientError):
    """Model server unreachable, slow, busy, crashed or answering garbage (transient)."""


class ModelRejected(ModelError, PermanentError):
    """The request itself is wrong for this server/model (permanent for this request)."""

    outage = False


class BadTurn(ModelError, TransientError):
    """The server answered, but not usably for this message (empty, or refused by the reply
    guard): the message's failure, retried with backoff behind the others."""

    outage = False

    def __init__(self, reason: str, *, result: ChatResult | None = None) -> None:
        super().__init__(reason, status=200)
        self.result = result


class EmptyTurn(BadTurn):
    """HTTP 200 but no content and no tool calls: a dropped tool call."""


def classify(exc: BaseException, *, timeout_s: float, base_url: str) -> ModelError:
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
        return ModelUnavailable(f"timed out after {timeout_s:g}s")
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return ModelUnavailable(f"cannot connect to {base_url}")
    if isinstance(exc, httpx.HTTPError):  # RemoteProtocolError, ReadError, …
        return ModelUnavailable(f"connection broke: {describe(exc)}")
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError):
        return ModelUnavailable(f"malformed response: {describe(exc)}")
    if isinstance(exc, ollama.RequestError | ValueError | TypeError):
        return ModelRejected(f"request not sendable: {describe(exc)}")
    return ModelUnavailable(f"unexpected error: {describe(exc)}")


def describe(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (at most 200 chars), for reasons and logs."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
