"""Server-side board sessions: a random id in the cookie, everything else stays here.

Sessions live in memory: a gateway restart logs everyone out (they log in again), and nothing
about a session is ever written to disk or trusted from the browser."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.models import Role
from bot.redact import mask_peer

log = logging.getLogger(__name__)

COOKIE = "lifeline_board"
MAX_SESSIONS = 1000  # a flood of logins cannot grow memory without bound: oldest go first


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user: str  # the Matrix user ID the homeserver confirmed
    role: Role  # at login; re-checked against the configuration on every request
    csrf: str
    expires_at: float


class Sessions:
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._by_id: dict[str, Session] = {}

    def create(self, user: str, role: Role) -> Session:
        while len(self._by_id) >= MAX_SESSIONS:
            oldest = min(self._by_id.values(), key=lambda s: s.expires_at)
            del self._by_id[oldest.id]
        session = Session(
            id=secrets.token_urlsafe(32),
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            expires_at=self.clock() + self.lifetime_s,
        )
        self._by_id[session.id] = session
        log.info("board: %s logged in as %s", mask_peer(user), role.value)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        if session is not None and session.expires_at <= self.clock():
            del self._by_id[session_id]
            log.info("board: session of %s expired", mask_peer(session.user))
            return None
        return session

    def drop(self, session_id: str) -> None:
        session = self._by_id.pop(session_id, None)
        if session is not None:
            log.info("board: %s logged out", mask_peer(session.user))

    def __len__(self) -> int:
        return len(self._by_id)
