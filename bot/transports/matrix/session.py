"""The homeserver session: the nio client, login (restored from the store, else once with the
password), the sync loop with its backoff, and the health the status report shows.

Never `logout()`: it deletes the device and its E2EE keys on the homeserver. The sync token is
not stored by nio (`store_sync_tokens=False`): it advances only when the cycle's `deliver` step
has committed the inbox rows with it; any failure syncs the same window again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    ErrorResponse,
    LoginResponse,
    MessageDirection,
    RoomMessagesError,
    SyncResponse,
    WhoamiResponse,
)

from bot.aio import finish, raise_if_cancelling
from bot.backoff import delay
from bot.transports.matrix.errors import (
    TOKEN_ERRCODES,
    MatrixSendTransient,
    MatrixStartError,
    MatrixStartPermanent,
    MatrixStartTransient,
    SyncFailed,
    TokenRejected,
    err_text,
    login_refused,
)
from config.settings import MatrixSettings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 30.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0


@dataclass(frozen=True)
class MatrixHealth:
    state: str  # "new" | "connecting" | "online" | "reconnecting" | "auth_failed" | "stopped"
    last_sync_at: float | None
    last_error: str | None
    consecutive_errors: int
    user_id: str


@dataclass(frozen=True)
class SyncSteps:
    """What a sync cycle does around the sync request (the transport front supplies them)."""

    before: Callable[[], Awaitable[None]]  # e.g. m.direct loaded, device keys uploaded
    deliver: Callable[[SyncResponse, str | None], Awaitable[None]]  # commits rows + next_batch
    after: Callable[[SyncResponse, str], Awaitable[None]]  # invites, key requests, late keys


class Session:
    def __init__(
        self,
        settings: MatrixSettings,
        homeserver: str,
        *,
        timeline_limit: int,
        max_backfill_events: int,
    ) -> None:
        self._settings = settings
        self._homeserver = homeserver.rstrip("/")
        self._store_path = Path(settings.store_path)
        self._session_path = self._store_path / "session.json"
        self._timeline_limit = timeline_limit
        self._max_backfill = max_backfill_events
        self.client: AsyncClient | None = None
        self._state = "new"
        self._last_sync_at: float | None = None
        self._last_error: str | None = None
        self._errors = 0
        self._synced = asyncio.Event()  # set (and replaced) after every committed sync
        self._back = asyncio.Event()  # set (and replaced) by the first good sync after failures

    # ------------------------------------------------------------------ state
    @property
    def health(self) -> MatrixHealth:
        user = self.client.user_id if self.client is not None else self._settings.user_id
        return MatrixHealth(self._state, self._last_sync_at, self._last_error, self._errors, user)

    def set_state(self, state: str, detail: str = "") -> None:
        if state == self._state:
            return
        old, self._state = self._state, state
        level = logging.WARNING if state in {"reconnecting", "auth_failed"} else logging.INFO
        log.log(level, "matrix: %s -> %s%s", old, state, f" ({detail})" if detail else "")

    async def wait_back(self) -> None:
        """Returns when the homeserver answers again after failed syncs."""
        await self._back.wait()

    def require_client(self) -> AsyncClient:
        if self.client is None:
            raise MatrixSendTransient("matrix transport not started")
        return self.client

    # ------------------------------------------------------------------ login
    def _read_session(self) -> dict[str, str] | None:
        try:
            data: dict[str, str] = json.loads(self._session_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            log.error("matrix: %s is corrupt; ignoring it", self._session_path)
            return None
        if data.get("user_id") != self._settings.user_id or not data.get("access_token"):
            return None
        return data

    def _write_session(self, client: AsyncClient) -> None:
        data = {
            "homeserver": self._homeserver,
            "user_id": client.user_id,
            "device_id": client.device_id,
            "access_token": client.access_token,
        }
        tmp = self._session_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._session_path)

    async def start(self) -> None:
        """Restore the session (or log in once with the password) and load the E2EE store."""
        if not self._homeserver:
            raise MatrixStartPermanent("matrix.homeserver is empty")
        self._store_path.mkdir(parents=True, exist_ok=True)
        os.chmod(self._store_path, 0o700)
        config = AsyncClientConfig(
            encryption_enabled=self._settings.encryption,
            store_sync_tokens=False,  # the token is committed with the inbox rows, by on_batch
            max_limit_exceeded=0,  # 429 comes back to us instead of nio sleeping silently
            max_timeouts=0,  # connection errors raise; our loop backs off and reports
            request_timeout=REQUEST_TIMEOUT_S,
        )
        client = AsyncClient(
            self._homeserver,
            self._settings.user_id,
            store_path=str(self._store_path),
            config=config,
        )
        self.client = client
        token = self._settings.access_token.get_secret_value()
        session = self._read_session()
        try:
            if token and self._settings.device_id:
                client.restore_login(self._settings.user_id, self._settings.device_id, token)
                log.info("matrix: session from settings, device %s", self._settings.device_id)
            elif session is not None:
                client.restore_login(
                    session["user_id"], session["device_id"], session["access_token"]
                )
                log.info("matrix: session restored from store, device %s", session["device_id"])
            else:
                await self._password_login(device_id=None)
        except MatrixStartError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise MatrixStartTransient(f"matrix login failed: {exc!r}") from exc
        except Exception as exc:  # olm store load errors etc.
            raise MatrixStartPermanent(f"matrix session/store load failed: {exc!r}") from exc

    async def _password_login(self, device_id: str | None) -> None:
        client = self.require_client()
        password = self._settings.password.get_secret_value()
        if not password:
            self.set_state("auth_failed", "no password configured")
            raise MatrixStartPermanent("matrix: no valid session and no password to log in")
        if device_id:
            client.device_id = device_id  # same device → same E2EE identity
        resp = await asyncio.wait_for(
            client.login(password=password, device_name="lifeline"), REQUEST_TIMEOUT_S
        )
        if not isinstance(resp, LoginResponse):
            self.set_state("auth_failed", err_text(resp))
            raise login_refused(resp)
        self._write_session(client)
        log.info("matrix: logged in as %s, device %s", resp.user_id, resp.device_id)

    async def _check(self) -> None:
        """whoami; on an invalid token log in again with the same device id."""
        client = self.require_client()
        resp = await asyncio.wait_for(client.whoami(), REQUEST_TIMEOUT_S)
        if isinstance(resp, WhoamiResponse):
            return
        if getattr(resp, "status_code", "") in TOKEN_ERRCODES:
            log.warning("matrix: access token rejected (%s); logging in again", err_text(resp))
            await self._password_login(device_id=client.device_id)
            return
        raise SyncFailed(f"whoami: {err_text(resp)}")

    # ------------------------------------------------------------------ sync loop
    async def run(self, since: str | None, steps: SyncSteps) -> None:
        """Sync until cancelled; every failure is logged, counted, shown in health and retried
        with backoff. Closes the client (no logout) on the way out."""
        client = self.require_client()
        session_checked = False
        # Resuming from a stored token, the client knows no room state (members: is it a DM? whom
        # to share room keys with?); the first sync asks for the full state of every room.
        full_state = since is not None
        timeout_ms = int(self._settings.sync_timeout_s * 1000)
        try:
            while True:
                raise_if_cancelling()
                try:
                    if not session_checked:
                        self.set_state("connecting" if self._errors == 0 else "reconnecting")
                        await self._check()
                        session_checked = True
                    await steps.before()
                    long_poll = timeout_ms if self._last_sync_at is not None else 0
                    try:
                        resp = await self._sync(since, long_poll, full_state=full_state)
                    except TokenRejected:
                        session_checked = False
                        raise
                    await steps.deliver(resp, since)
                    since, full_state = resp.next_batch, False
                    self._synced_ok()
                    await steps.after(resp, since)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure: logged, counted, retried
                    raise_if_cancelling()  # aiohttp/nio can turn our cancellation into a timeout
                    client.next_batch = since  # let nio re-process the replayed window
                    wait_s = self._sync_failed(exc)
                    # a rejected login, or reachable again: re-check the token first
                    if isinstance(
                        exc, MatrixStartError | aiohttp.ClientError | OSError | TimeoutError
                    ):
                        session_checked = False
                    await asyncio.sleep(wait_s)
        finally:
            await self.close()

    def _synced_ok(self) -> None:
        self._last_sync_at = time.time()
        if self._errors:
            log.warning("matrix: recovered after %d failed attempts", self._errors)
            self._back.set()
            self._back = asyncio.Event()
        self._errors = 0
        self._last_error = None
        self.set_state("online")
        self._synced.set()
        self._synced = asyncio.Event()

    def _sync_failed(self, exc: Exception) -> float:
        """Count and report a failed cycle; returns how long to wait before the next."""
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"[:500]
        if isinstance(exc, MatrixStartError):
            self.set_state("auth_failed", self._last_error)
        else:
            self.set_state("reconnecting", self._last_error)
        wait_s = delay(self._errors, base=BACKOFF_MIN_S, cap=BACKOFF_MAX_S)
        log.warning(
            "matrix: sync attempt failed (%d in a row), retry in %.0fs: %s",
            self._errors,
            wait_s,
            self._last_error,
        )
        return wait_s

    def _sync_filter(self) -> dict[str, Any]:
        return {
            "presence": {"not_types": ["*"]},
            "room": {
                "timeline": {"limit": self._timeline_limit},
                "state": {"lazy_load_members": False},
                "ephemeral": {"not_types": ["*"]},
            },
        }

    async def _sync(
        self, since: str | None, long_poll_ms: int, *, full_state: bool = False
    ) -> SyncResponse:
        client = self.require_client()
        resp = await _bounded(
            client.sync(
                timeout=long_poll_ms,
                sync_filter=self._sync_filter(),
                since=since,
                full_state=full_state or None,
            ),
            long_poll_ms / 1000 + 20,  # nio's own HTTP timeout (+15 s) fires first
        )
        if isinstance(resp, SyncResponse):
            return resp
        if getattr(resp, "status_code", "") in TOKEN_ERRCODES:
            raise TokenRejected(f"sync: {err_text(resp)}")
        raise SyncFailed(f"sync: {err_text(resp)}")

    async def page_back(self, room_id: str, prev_batch: str, since: str) -> list[Any]:
        """Events between `since` and the start of a limited timeline, oldest first."""
        client = self.require_client()
        collected: list[Any] = []
        token = prev_batch
        while True:
            resp = await asyncio.wait_for(
                client.room_messages(
                    room_id, start=token, end=since, direction=MessageDirection.back, limit=100
                ),
                REQUEST_TIMEOUT_S,
            )
            if isinstance(resp, RoomMessagesError | ErrorResponse):
                raise SyncFailed(f"room_messages {room_id}: {err_text(resp)}")
            collected.extend(resp.chunk)
            if not resp.chunk or not resp.end or resp.end == token:
                break
            if len(collected) >= self._max_backfill:
                log.error(
                    "matrix: backfill cap %d reached in %s; older missed events not fetched",
                    self._max_backfill,
                    room_id,
                )
                break
            token = resp.end
        collected.reverse()
        log.info("matrix: paged back %d events in %s (limited timeline)", len(collected), room_id)
        return collected

    async def wait_room_known(self, room_id: str, timeout: float) -> None:  # noqa: ASYNC109
        """Wait (while online, at most `timeout`) until a sync has brought `room_id` in."""
        client = self.require_client()
        deadline = time.monotonic() + timeout
        while room_id not in client.rooms and self._state == "online":
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), left)

    async def close(self) -> None:
        """Close HTTP; keep device, token and keys (no logout). Runs to its end even if the
        stop cancels us again meanwhile: a close cut short leaves nio's aiohttp session open."""
        client = self.client
        if client is not None:
            await finish(_close_http(client))
        if self._state != "stopped":
            self.set_state("stopped")


async def _close_http(client: AsyncClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 10)


async def _bounded(coro: Awaitable[Any], timeout: float) -> Any:  # noqa: ASYNC109
    """Like asyncio.wait_for, but a cancellation of the caller never waits for the inner task.

    Seen here: a nio sync whose cancellation was absorbed somewhere in nio/aiohttp, leaving
    wait_for (which awaits the cancelled inner task) and so the whole shutdown hanging.
    """
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {timeout:.0f}s")
    return task.result()
