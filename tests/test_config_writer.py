"""The one TOML writer (tomli-w) behind the drill gateway's config and the tests' configs: what
it writes reads back as the same settings, whatever a password or a name holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bot.drill.gateway import GatewayProcess, gateway_config
from config.settings import load_settings
from tests.harness.process import to_toml

AWKWARD = 'quote " backslash \\ tab \t del \x7f bengali বন্যা emoji 🚤'


def test_the_drill_config_reads_back_as_written(tmp_path: Path) -> None:
    config = gateway_config(
        tmp_path,
        modems=2,
        send_per_minute=6,
        model_host="http://127.0.0.1:9",
        matrix={
            "enabled": True,
            "homeserver": "http://127.0.0.1:8",
            "user_id": "@bot:localhost",
            "password": AWKWARD,
            "coordinators": ["@c:localhost"],
            "responders": [],
        },
        teams=[{"id": "boat-1", "kind": "boat", "base": AWKWARD, "capacity": 8}],
        overrides={"queue": {"retry_base_s": 0.5}},
    )
    gateway = GatewayProcess(tmp_path, config)
    assert tomllib.loads(gateway.config_path.read_text(encoding="utf-8")) == config
    settings = load_settings(gateway.config_path, environ={})
    assert settings.matrix.password.get_secret_value() == AWKWARD
    assert settings.teams[0].base == AWKWARD


def test_the_harness_writer_round_trips_nested_values() -> None:
    data = {"a b": {"x": [1, [2.5, "3"]], AWKWARD: True}, "t": [{"k": AWKWARD}, {"k": ""}]}
    assert tomllib.loads(to_toml(data)) == data
