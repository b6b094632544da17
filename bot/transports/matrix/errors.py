"""Homeserver failures, classified at the boundary into the kinds of bot/errors.py.

Callers catch ``MatrixSendError`` / ``MatrixStartError`` and decide by kind
(``TransientError`` → retry later, ``PermanentError`` → dead letter); ``transient`` and
``retry_after_s`` stay readable on every instance because bot/queue.py reads them.
"""

from __future__ import annotations

from typing import Any

from bot.errors import LifelineError, PermanentError, TransientError


class MatrixSendError(LifelineError):
    """A send (or a room lookup for one) failed; raised as one of the two kinds below."""

    retry_after_s: float | None = None


class MatrixSendTransient(MatrixSendError, TransientError):
    """Homeserver down, 5xx, rate limited, token being renewed: retry later."""


class MatrixSendPermanent(MatrixSendError, PermanentError):
    """Forbidden, unknown room, malformed or too large: the same send fails again."""


class MatrixStartError(LifelineError):
    """Login or store load failed at start; ``reason`` says why."""

    retry_after_s: float | None = None


class MatrixStartTransient(MatrixStartError, TransientError):
    """The homeserver could not be reached (or answered 5xx / 429) while logging in."""


class MatrixStartPermanent(MatrixStartError, PermanentError):
    """No homeserver or password configured, login refused, or the E2EE store unreadable."""


class SyncFailed(TransientError):
    """A request of the sync loop failed; the loop backs off and syncs the same window again."""


class TokenRejected(SyncFailed):
    """The access token is no longer valid: check the session (and log in again) first."""


TOKEN_ERRCODES = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})


def err_text(resp: Any) -> str:
    return str(resp) if resp is not None else "no response"


def _http_status(resp: Any) -> int | None:
    tr = getattr(resp, "transport_response", None)
    status = getattr(tr, "status", None)
    return status if isinstance(status, int) else None


def is_transient_response(resp: Any) -> tuple[bool, float | None]:
    """(transient?, retry after seconds) for a nio ErrorResponse."""
    errcode = str(getattr(resp, "status_code", "") or "")
    status = _http_status(resp)
    retry_ms = getattr(resp, "retry_after_ms", None)
    if errcode == "M_LIMIT_EXCEEDED" or status == 429:
        return True, (float(retry_ms) / 1000 if retry_ms else None)
    if status is not None and status >= 500:
        return True, None
    if errcode in TOKEN_ERRCODES or status == 401:
        return True, None  # re-login in the sync loop fixes it
    if errcode in {"M_FORBIDDEN", "M_NOT_FOUND", "M_BAD_JSON", "M_NOT_JSON", "M_TOO_LARGE"}:
        return False, None
    if status in {400, 403, 404, 413}:
        return False, None
    return True, None


def classify_send_error(resp: Any) -> MatrixSendError:
    """Map a nio ErrorResponse to a transient or permanent send error."""
    transient, retry_after_s = is_transient_response(resp)
    reason = err_text(resp)
    if transient:
        return MatrixSendTransient(reason, retry_after_s=retry_after_s)
    return MatrixSendPermanent(reason)


def login_refused(resp: Any) -> MatrixStartError:
    """A login answer that is not a LoginResponse, by kind."""
    transient, retry_after_s = is_transient_response(resp)
    reason = f"matrix login failed: {err_text(resp)}"
    refused = _http_status(resp) == 401 or getattr(resp, "status_code", "") in TOKEN_ERRCODES
    if transient and not refused:
        return MatrixStartTransient(reason, retry_after_s=retry_after_s)
    return MatrixStartPermanent(reason)
