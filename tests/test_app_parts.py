"""The pure parts bot/app.py composes: role policy, wakers, drill mode's Matrix settings, the CLI
hint printed in the banner, and the CLI's masked table output. No gateway needed."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from bot import cli_base
from bot.banner import cli_hint
from bot.cli_table import Col
from bot.drill.homeserver import DrillInfo, drill_matrix_settings
from bot.models import Channel, Role
from bot.queue import Waker
from bot.roles import role_of
from bot.synapse_local import LocalSynapse
from bot.wakers import Wakers
from config.settings import MatrixSettings


def _awake(w: Waker) -> bool:
    return w._event.is_set()


def test_role_policy() -> None:
    m = MatrixSettings(coordinators=["@amina:relief.local"], responders=["@raj:relief.local"])
    assert role_of(m, Channel.MATRIX, "@amina:relief.local") is Role.COORDINATOR
    assert role_of(m, Channel.MATRIX, "@raj:relief.local") is Role.RESPONDER
    assert role_of(m, Channel.MATRIX, "@someone:relief.local") is Role.PUBLIC
    # An SMS sender is the public even when the text of a staff ID matches.
    assert role_of(m, Channel.SMS, "@amina:relief.local") is Role.PUBLIC


@pytest.mark.parametrize(
    ("routes", "model", "fast"),
    [(["model"], True, False), (["fast", "throttled"], False, True), (["merged"], False, False)],
)
def test_committed_wakes_the_senders_and_each_route_with_work(
    routes: list[str], model: bool, fast: bool
) -> None:
    w = Wakers()
    w.committed([SimpleNamespace(decision=SimpleNamespace(route=r)) for r in routes])  # type: ignore[list-item]
    assert _awake(w.sms) and _awake(w.matrix)
    assert (_awake(w.model), _awake(w.fast)) == (model, fast)


def test_outboxes_wakes_only_the_senders() -> None:
    w = Wakers()
    w.outboxes()
    assert _awake(w.sms) and _awake(w.matrix)
    assert not _awake(w.model) and not _awake(w.fast)


def _drill(tmp_path: Path) -> DrillInfo:
    return DrillInfo(
        homeserver="http://127.0.0.1:8008",
        bot_user_id="@lifeline:localhost",
        bot_password="bot-pw",
        coordinator_user_id="@coordinator:localhost",
        coordinator_password="coord-pw",
        room_id="!room:localhost",
        room_alias="#coordination:localhost",
        server=LocalSynapse(tmp_path),
    )


def test_drill_points_matrix_at_the_local_homeserver(tmp_path: Path) -> None:
    m = MatrixSettings(coordinators=["@amina:relief.local"], password=SecretStr(""))
    out = drill_matrix_settings(m, _drill(tmp_path))
    assert out.homeserver == "http://127.0.0.1:8008"
    assert out.user_id == "@lifeline:localhost"
    assert out.password.get_secret_value() == "bot-pw"
    assert out.coordination_room == "!room:localhost"
    assert out.coordinators == ["@amina:relief.local", "@coordinator:localhost"]
    assert m.coordinators == ["@amina:relief.local"]  # a copy: the configured settings stay


def test_drill_keeps_a_configured_coordination_room(tmp_path: Path) -> None:
    m = MatrixSettings(coordination_room="#ops:localhost")
    assert drill_matrix_settings(m, _drill(tmp_path)).coordination_room == "#ops:localhost"


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["/usr/bin/python3", "-m", "bot", "run"], "lifeline"),
        (["lifeline", "--config", "drill.toml", "run"], "lifeline --config drill.toml"),
        ([".venv/bin/lifeline", "-c", "x.toml", "run"], ".venv/bin/lifeline --config x.toml"),
        (["lifeline", "run", "--config"], "lifeline"),  # no value: nothing to repeat
    ],
)
def test_cli_hint_repeats_how_the_operator_ran_us(
    argv: list[str], hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert cli_hint() == hint


def test_emit_masks_peers_in_tables_but_not_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    def rows() -> list[dict[str, Any]]:
        return [{"peer": "+8801712345678", "text": "help"}]

    cli_base.emit(rows(), True, [Col("peer"), Col("text")], "Messages", mask="peer")
    assert "+8801712345678" in capsys.readouterr().out
    cli_base.emit(rows(), False, [Col("peer"), Col("text")], "Messages", mask="peer")
    table = capsys.readouterr().out
    assert "help" in table and "+8801712345678" not in table and "678" in table
