"""CSRF: every state-changing request carries the session's token (a header for the API, a form
field for logout). SameSite=Strict already keeps other sites' requests cookie-less; the token
is the second lock."""

from __future__ import annotations

import hmac

from bot.board.sessions import Session

HEADER = "X-CSRF-Token"
FIELD = "csrf"


def valid(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), str(token).encode())
