"""config/env.py and config/report.py on a small schema of their own (no Settings needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.errors import UserError
from config.env import read_env
from config.report import close_key, format_validation_error, model_at
from config.settings import ConfigError


class _T(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Radio(_T):
    name: str = "r1"
    channels: int = 1


class Net(_T):
    host: str = ""
    password: SecretStr = SecretStr("")
    port: int = 80
    tags: list[str] = Field(default_factory=list)
    spool: Path = Path("var")


class Root(_T):
    net: Net = Net()
    radios: list[Radio] = Field(default_factory=list)
    backup: Net | None = None


def test_read_env_types_text_verbatim_and_others_as_toml() -> None:
    env = read_env(
        {
            "LIFELINE_NET__HOST": "true",
            "LIFELINE_NET__PASSWORD": '"quoted"',
            "LIFELINE_NET__PORT": "8080",
            "LIFELINE_NET__TAGS": '["a", "b"]',
            "LIFELINE_NET__SPOOL": "/tmp/x",
            "LIFELINE_CONFIG": "ignored.toml",
            "PATH": "/bin",
        },
        Root,
    )
    assert env.overrides == {
        "net": {
            "host": "true",
            "password": '"quoted"',
            "port": 8080,
            "tags": ["a", "b"],
            "spool": "/tmp/x",
        }
    }
    assert env.sources[("net", "port")] == "LIFELINE_NET__PORT"
    assert env.unknown == []


def test_read_env_names_unknown_variables() -> None:
    env = read_env({"LIFELINE_NET__HOTS": "x", "LIFELINE_RADIOS__NAME": "y"}, Root)
    assert env.overrides == {}
    assert env.unknown == [
        "environment variable LIFELINE_NET__HOTS matches no setting (net.hots); "
        "did you mean LIFELINE_NET__HOST?",
        "environment variable LIFELINE_RADIOS__NAME: [radios] is a list of tables and can "
        "only be set in the config file",
    ]


def test_model_at_and_close_key() -> None:
    assert model_at(Root, ("net", "hots")) is Net
    assert model_at(Root, ("radios", 0, "chanels")) is Radio
    assert model_at(Root, ("backup", "prot")) is Net
    assert model_at(Root, ("net", "port", "x")) is None
    assert close_key(Root, ("net", "hots")) == "host"
    assert close_key(Root, ("radio",)) == "[[radios]]"
    assert close_key(Root, ("nett",)) == "[net]"
    assert close_key(Root, ("zzz",)) is None
    assert close_key(Root, ("radios", 0)) is None


def test_format_validation_error_names_key_source_and_typo() -> None:
    with pytest.raises(ValidationError) as info:
        Root.model_validate({"net": {"hots": "x", "port": "many"}})
    text = format_validation_error(
        Root, info.value, "lifeline.toml", {("net", "port"): "LIFELINE_NET__PORT"}
    )
    assert text.splitlines() == [
        "invalid configuration in lifeline.toml and the environment:",
        "  - net.port (from environment variable LIFELINE_NET__PORT): Input should be a valid "
        "integer, unable to parse string as an integer",
        "  - net.hots: unknown key; did you mean host?",
    ]


def test_config_error_is_a_user_error() -> None:
    assert issubclass(ConfigError, UserError)
    assert ConfigError("bad key").reason == "bad key"
