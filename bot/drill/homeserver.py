"""Drill mode's homeserver: with no `[matrix].homeserver` configured, `lifeline run` starts (or
reuses) a local Synapse in `[matrix].drill_dir` with a bot account, a coordinator account and the
#coordination room, and points the Matrix settings at it."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bot.synapse_local import SERVER_NAME, LocalSynapse, MatrixHTTPError, http_json, write_private
from config.settings import MatrixSettings

log = logging.getLogger(__name__)

# Where alerts go in drill mode before the local homeserver is up and its room id known; not a
# valid Matrix alias (no server part), so it can never name a real room.
DRILL_COORDINATION = "#lifeline-drill-coordination"


@dataclass(frozen=True)
class DrillInfo:
    homeserver: str
    bot_user_id: str
    bot_password: str
    coordinator_user_id: str
    coordinator_password: str
    room_id: str
    room_alias: str
    server: LocalSynapse = field(compare=False, repr=False)


def _load_drill_state(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("drill: %s unreadable; regenerating", path)
        return {}
    return data


def _ensure_drill_sync(workdir: Path, bot_localpart: str, coordinator_localpart: str) -> DrillInfo:
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    state_path = workdir / "drill.json"
    state = _load_drill_state(state_path)
    state.setdefault("bot_password", secrets.token_urlsafe(18))
    state.setdefault("coordinator_password", secrets.token_urlsafe(18))
    write_private(state_path, json.dumps(state, indent=2))

    server = LocalSynapse(workdir)
    if not server.adopt_running():
        server.start()
    bot = server.register(bot_localpart, state["bot_password"])
    coord = server.register(coordinator_localpart, state["coordinator_password"], admin=True)
    alias = f"#coordination:{SERVER_NAME}"
    quoted = urllib.parse.quote(alias)
    base = f"{server.url}/_matrix/client/v3"
    try:
        room_id = str(http_json("GET", f"{base}/directory/room/{quoted}")["room_id"])
    except MatrixHTTPError as exc:
        if exc.status != 404:
            raise
        room_id = str(
            http_json(
                "POST",
                f"{base}/createRoom",
                {
                    "room_alias_name": "coordination",
                    "name": "Lifeline coordination (drill)",
                    "topic": "Drill homeserver: incidents, dispatch approvals, sitreps",
                    "preset": "private_chat",
                    "invite": [bot.user_id],
                },
                token=coord.access_token,
            )["room_id"]
        )
        log.info("drill: created %s (%s)", alias, room_id)
    rid = urllib.parse.quote(room_id)
    joined = http_json("GET", f"{base}/joined_rooms", token=bot.access_token)["joined_rooms"]
    if room_id not in joined:
        try:
            http_json(
                "POST",
                f"{base}/rooms/{rid}/invite",
                {"user_id": bot.user_id},
                token=coord.access_token,
            )
        except MatrixHTTPError as exc:
            if exc.status != 403:  # 403: already invited
                raise
        http_json("POST", f"{base}/join/{rid}", {}, token=bot.access_token)
    state.update(
        {
            "homeserver": server.url,
            "bot_user_id": bot.user_id,
            "coordinator_user_id": coord.user_id,
            "room_id": room_id,
            "room_alias": alias,
        }
    )
    write_private(state_path, json.dumps(state, indent=2))
    return DrillInfo(
        homeserver=server.url,
        bot_user_id=bot.user_id,
        bot_password=state["bot_password"],
        coordinator_user_id=coord.user_id,
        coordinator_password=state["coordinator_password"],
        room_id=room_id,
        room_alias=alias,
        server=server,
    )


async def ensure_drill(
    workdir: Path, bot_localpart: str = "lifeline", coordinator_localpart: str = "coordinator"
) -> DrillInfo:
    """Start (or reuse) the drill homeserver, its two accounts and #coordination; idempotent."""
    return await asyncio.to_thread(
        _ensure_drill_sync, workdir, bot_localpart, coordinator_localpart
    )


def drill_matrix_settings(m: MatrixSettings, drill: DrillInfo) -> MatrixSettings:
    """The Matrix settings pointed at the drill homeserver: its bot account, its room unless one is
    configured, and its coordinator added to the configured ones."""
    return m.model_copy(
        update={
            "homeserver": drill.homeserver,
            "user_id": drill.bot_user_id,
            "password": type(m.password)(drill.bot_password),
            "coordination_room": m.coordination_room or drill.room_id,
            "coordinators": [*m.coordinators, drill.coordinator_user_id],
        }
    )


def print_drill(drill: DrillInfo) -> None:
    from rich.console import Console

    Console(stderr=True).print(
        f"Local drill homeserver: {drill.homeserver}\n"
        f"  coordinator login: {drill.coordinator_user_id} / {drill.coordinator_password}\n"
        f"  coordination room: {drill.room_alias} ({drill.room_id})",
        soft_wrap=True,
    )
