"""The board's settings about places: a team's base position (`[[teams]] base_at`) and the
public address behind a reverse proxy (`[board] public_url`): accepted forms, and errors that
name the key and say what to write."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.llm import ModelHealth
from config.settings import ConfigError, Settings, load_settings

CONFIG = Path(__file__).resolve().parent.parent / "config"


def load(tmp_path: Path, toml: str) -> Settings:
    path = tmp_path / "lifeline.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings(path, environ={})


def problem(tmp_path: Path, toml: str, key: str) -> str:
    """The error line about ``key``."""
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, toml)
    return next(x for x in str(exc.value).splitlines() if key in x)


TEAM = '[[teams]]\nid = "boat-1"\nkind = "boat"\nbase = "ghat"\n'


def test_a_team_base_position_is_latitude_then_longitude(tmp_path: Path) -> None:
    s = load(tmp_path, TEAM + "base_at = [25.71, 89.66]\n" + TEAM.replace("boat-1", "boat-2"))
    assert s.teams[0].base_at == (25.71, 89.66)
    assert s.teams[1].base_at is None  # optional: that team is simply not on the map
    assert load(tmp_path, TEAM + "base_at = [-33, 151]\n").teams[0].base_at == (-33.0, 151.0)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("[90.41, 23.81]", "latitude 90.41 is outside -90..90"),  # GeoJSON order, swapped
        ("[23.81, 190.0]", "longitude 190 is outside -180..180"),
        ("[23.81]", "expected [latitude, longitude] in degrees, latitude first"),
        ("[23.81, 90.41, 5]", "expected [latitude, longitude]"),
        ('"23.81, 90.41"', "expected [latitude, longitude]"),
        ('["23.81", "90.41"]', "both must be numbers"),
        ("[true, 90.41]", "both must be numbers"),
        ("[nan, 90.41]", "latitude nan is outside"),
    ],
)
def test_a_bad_base_position_is_named_with_the_form_to_write(
    tmp_path: Path, value: str, says: str
) -> None:
    line = problem(tmp_path, TEAM + f"base_at = {value}\n", "teams.0.base_at")
    assert says in line and "e.g. [25.71, 89.66]" in line, line


def test_a_mistyped_base_position_key_gets_did_you_mean(tmp_path: Path) -> None:
    line = problem(tmp_path, TEAM + "base_a = [25.71, 89.66]\n", "teams.0.base_a")
    assert "did you mean base_at?" in line, line


def test_make_run_and_the_example_give_their_teams_base_positions() -> None:
    for name in ("drill.toml", "lifeline.example.toml"):
        data = tomllib.loads((CONFIG / name).read_text(encoding="utf-8"))
        s = Settings.model_validate(data)
        assert s.teams and all(t.base_at is not None for t in s.teams), name
        lat, lon = s.board.center_lat, s.board.center_lon
        for t in s.teams:  # on screen where the board's map opens
            assert t.base_at is not None
            assert abs(t.base_at[0] - lat) < 0.1 and abs(t.base_at[1] - lon) < 0.1, (name, t)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://board.lan", "https://board.lan"),
        ("https://Board.LAN/", "https://board.lan"),  # as a browser's Origin header writes it
        ("https://board.lan:443", "https://board.lan"),
        ("https://192.168.1.10:8443/", "https://192.168.1.10:8443"),
        ("http://board.lan:8080", "http://board.lan:8080"),
        ("https://[fd00::10]", "https://[fd00::10]"),
        ("", ""),
    ],
)
def test_public_url_is_kept_as_the_origin_browsers_send(
    tmp_path: Path, url: str, origin: str
) -> None:
    s = load(tmp_path, f'[board]\npublic_url = "{url}"\n')
    assert s.board.public_url == origin
    assert s.board.secure is origin.startswith("https://")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("board.lan", "must start with https:// or http://"),
        ("ftp://board.lan", "must start with https:// or http://"),
        ("https://", "must start with https:// or http://"),
        ("https://board.lan/lifeline", "no path, query or user"),
        ("https://board.lan/?x=1", "no path, query or user"),
        ("https://admin@board.lan", "no path, query or user"),
        ("https://board.lan:99999", "not a URL"),
        ("https://board lan", "must start with https:// or http://"),
    ],
)
def test_a_bad_public_url_is_named_with_an_example(tmp_path: Path, url: str, says: str) -> None:
    line = problem(tmp_path, f'[board]\npublic_url = "{url}"\n', "board.public_url")
    assert says in line and "e.g. 'https://board.lan'" in line, line


def test_public_url_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "lifeline.toml"
    path.write_text("", encoding="utf-8")
    s = load_settings(path, environ={"LIFELINE_BOARD__PUBLIC_URL": "https://board.lan/"})
    assert s.board.public_url == "https://board.lan"
    with pytest.raises(ConfigError, match="LIFELINE_BOARD__PUBLIC_URL"):
        load_settings(path, environ={"LIFELINE_BOARD__PUBLIC_URL": "https://board.lan/x"})


def test_the_banner_prints_the_public_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import print_banner

    monkeypatch.setenv("COLUMNS", "200")
    health = ModelHealth(False, False, frozenset(), None, "not reachable")
    board = {"enabled": True, "port": 8380}
    print_banner(Settings.model_validate({"board": board}), health)
    assert "Incident board: http://127.0.0.1:8380/ " in capsys.readouterr().err
    board["public_url"] = "https://board.lan"
    print_banner(Settings.model_validate({"board": board}), health)
    out = capsys.readouterr().err
    assert "Incident board: https://board.lan/ " in out and "8380" not in out


def test_trusted_proxy_is_an_ip_address_and_needs_public_url(tmp_path: Path) -> None:
    ok = '[board]\npublic_url = "https://board.lan"\ntrusted_proxy = "::1"\n'
    assert load(tmp_path, ok).board.trusted_proxy == "::1"
    line = problem(tmp_path, ok.replace('"::1"', '"proxy.lan"'), "board.trusted_proxy")
    assert "e.g. '127.0.0.1'" in line and "a host name is not accepted" in line, line
    with pytest.raises(ConfigError, match="trusted_proxy is for a board behind a reverse proxy"):
        load(tmp_path, '[board]\ntrusted_proxy = "127.0.0.1"\n')
