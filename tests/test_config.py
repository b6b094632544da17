"""Config: strict schema, env overrides, clear errors naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lifeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_and_drill_configs_are_valid() -> None:
    for name in ("lifeline.example.toml", "drill.toml"):
        s = load_settings(ROOT / "config" / name, environ={})
        assert s.teams, name


def test_missing_default_file_means_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, environ={})
    assert s == Settings()
    assert s.sms.modems[0].model == "dummy"


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[model]\nhost = "http://127.0.0.1:11434"\ntimeot_s = 5\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert "model.timeot_s" in str(exc.value)
    assert "unknown key" in str(exc.value)


@pytest.mark.parametrize(
    ("toml", "key", "meant"),
    [
        ('[dispatch]\napprovl = "auto"\n', "dispatch.approvl", "did you mean approval?"),
        ('[modle]\nname = "gemma4:e4b"\n', "modle", "did you mean [model]?"),
        ("[queue]\nMAX_ATTEMPTS = 3\n", "queue.MAX_ATTEMPTS", "did you mean max_attempts?"),
        ('[[teem]]\nid = "boat-1"\n', "teem", "did you mean [[teams]]?"),
        (
            '[[sms.modems]]\nname = "sim1"\ndevice = "var/m"\nsend_per_minit = 5\n',
            "sms.modems.0.send_per_minit",
            "did you mean send_per_minute?",
        ),
        (
            '[[teams]]\nid = "boat-1"\nkind = "boat"\ncapasity = 4\n',
            "teams.0.capasity",
            "did you mean capacity?",
        ),
    ],
)
def test_config_file_typo_gets_did_you_mean(
    tmp_path: Path, toml: str, key: str, meant: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, toml), environ={})
    line = next(x for x in str(exc.value).splitlines() if key in x)
    assert meant in line, line


def test_config_file_key_far_from_any_setting_gets_no_guess(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, "[dispatch]\nzzzz = 1\n"), environ={})
    assert "did you mean" not in str(exc.value)
    assert "see config/lifeline.example.toml" in str(exc.value)


def test_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="modems"):
        load_settings(write(tmp_path, "[modems]\nx = 1\n"), environ={})


def test_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, '[model]\nnum_ctx = "lots"\n'), environ={})
    assert "model.num_ctx" in str(exc.value)


def test_missing_modem_device_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sms.modems]]\nname = "sim1"\nmodel = "dummy"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert "sms.modems.0.device" in str(exc.value)


def test_duplicate_modem_names_rejected(tmp_path: Path) -> None:
    text = '[[sms.modems]]\nname = "a"\ndevice = "x"\n[[sms.modems]]\nname = "a"\ndevice = "y"\n'
    with pytest.raises(ConfigError, match="unique"):
        load_settings(write(tmp_path, text), environ={})


def test_bad_approval_policy(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dispatch.approval"):
        load_settings(write(tmp_path, '[dispatch]\napproval = "yolo"\n'), environ={})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[model\nhost=1"), environ={})


def test_env_overrides_file_and_types(tmp_path: Path) -> None:
    path = write(tmp_path, '[model]\nhost = "http://127.0.0.1:1"\n')
    s = load_settings(
        path,
        environ={
            "LIFELINE_MODEL__HOST": "http://127.0.0.1:2",
            "LIFELINE_MODEL__NUM_CTX": "4096",
            "LIFELINE_MATRIX__PASSWORD": "s3cret",
            "LIFELINE_MATRIX__COORDINATORS": '["@c:localhost"]',
            "LIFELINE_SMS__ENABLED": "false",
        },
    )
    assert s.model.host == "http://127.0.0.1:2"
    assert s.model.num_ctx == 4096
    assert s.matrix.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)  # secrets never printed
    assert s.matrix.coordinators == ["@c:localhost"]
    assert s.sms.enabled is False


def test_env_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.hots"):
        load_settings(write(tmp_path, ""), environ={"LIFELINE_MODEL__HOTS": "x"})


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write(tmp_path, '[queue]\norder = "fifo"\n')
    assert load_settings(None, environ={"LIFELINE_CONFIG": str(path)}).queue.order == "fifo"


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(st.integers(), st.text(max_size=8), st.booleans()),
        max_size=4,
    )
)
def test_arbitrary_tables_never_crash(
    tmp_path_factory: pytest.TempPathFactory, table: dict[str, object]
) -> None:
    """Any [model] table either loads or raises ConfigError — never another exception."""
    import tomllib

    lines = []
    for k, v in table.items():
        key = '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'
        val = (
            ("true" if v else "false")
            if isinstance(v, bool)
            else repr(v)
            if isinstance(v, int)
            else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
        lines.append(f"{key} = {val}")
    text = "[model]\n" + "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_settings(path, environ={})
    except ConfigError:
        pass


def test_cli_reports_config_error_and_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, "[sms]\nsegment_budget = 0\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(path), "incidents"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "sms.segment_budget" in proc.stderr


# ---- modems: simulated only when asked for -------------------------------------------------------


def test_real_modem_without_model_autodetects_not_dummy(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[sms.modems]]\nname = "usb1"\nconnection = "at"\ndevice = "/dev/ttyUSB0"\n'
        '[[sms.modems]]\nname = "sim1"\ndevice = "var/modem-sim1"\n',
    )
    real, simulated = load_settings(path, environ={}).sms.modems
    assert real.model == "" and not real.is_dummy  # gammu autodetect, real SMS
    assert simulated.connection == "none" and simulated.model == "dummy" and simulated.is_dummy


def test_dummy_model_with_real_connection_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[[sms.modems]]\nname = "usb1"\nconnection = "at"\nmodel = "dummy"\ndevice = "/dev/x"\n',
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    text = str(exc.value)
    assert "sms.modems.0.model" in text and 'connection = "at"' in text
    assert "Value error" not in text


def test_no_connection_with_real_model_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sms.modems]]\nname = "usb1"\nmodel = "E3372"\ndevice = "/dev/x"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert "sms.modems.0.model" in str(exc.value) and 'connection = "none"' in str(exc.value)


# ---- environment overrides ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["12345678", "true", "2024-05-01", '"se cret"', "[1]", "1.5"])
def test_env_string_settings_take_the_value_verbatim(tmp_path: Path, value: str) -> None:
    s = load_settings(
        write(tmp_path, ""),
        environ={
            "LIFELINE_MATRIX__PASSWORD": value,
            "LIFELINE_MATRIX__DEVICE_ID": value,
            "LIFELINE_MODEL__KEEP_ALIVE": value,
            "LIFELINE_MEDIA__DIR": value,
        },
    )
    assert s.matrix.password.get_secret_value() == value
    assert s.matrix.device_id == value and s.model.keep_alive == value
    assert s.media.dir == Path(value)


def test_env_non_string_settings_are_toml_values(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path, ""),
        environ={
            "LIFELINE_MODEL__TEMPERATURE": "0.5",
            "LIFELINE_MATRIX__ENCRYPTION": "false",
            "LIFELINE_MATRIX__RESPONDERS": '["@r:localhost", "@s:localhost"]',
            "LIFELINE_SMS__MODEMS": '[{name = "a", device = "var/a"}]',
            "LIFELINE_LOGGING__LEVEL": "WARNING",
        },
    )
    assert s.model.temperature == 0.5 and s.matrix.encryption is False
    assert s.matrix.responders == ["@r:localhost", "@s:localhost"]
    assert [(m.name, m.model) for m in s.sms.modems] == [("a", "dummy")]
    assert s.logging.level == "WARNING"


def test_env_error_names_the_variable_not_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(ROOT / "config" / "drill.toml", environ={"LIFELINE_SMS__ENABLED": "maybe"})
    text = str(exc.value)
    assert "from environment variable LIFELINE_SMS__ENABLED" in text
    assert "sms.enabled" in text and "drill.toml" not in text


def test_file_and_env_errors_each_name_their_source(tmp_path: Path) -> None:
    path = write(tmp_path, "[sms]\nsegment_budget = 0\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={"LIFELINE_MODEL__NUM_CTX": "lots"})
    text = str(exc.value)
    assert f"{path} and the environment" in text
    assert "  - sms.segment_budget: " in text
    assert "model.num_ctx (from environment variable LIFELINE_MODEL__NUM_CTX)" in text


@pytest.mark.parametrize(
    ("var", "suggestion"),
    [
        ("LIFELINE_MODEL_HOST", "LIFELINE_MODEL__HOST"),
        ("LIFELINE_MODEL__HOTS", "LIFELINE_MODEL__HOST"),
        ("LIFELINE_MATRIX__PASS", "LIFELINE_MATRIX__PASSWORD"),
        ("LIFELINE_CONFIGG", "LIFELINE_CONFIG"),
    ],
)
def test_unknown_env_variable_fails_with_the_closest_name(
    tmp_path: Path, var: str, suggestion: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, ""), environ={var: "http://127.0.0.1:2"})
    assert f"environment variable {var} matches no setting" in str(exc.value)
    assert f"did you mean {suggestion}?" in str(exc.value)


def test_unknown_env_variable_reported_with_other_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(
            write(tmp_path, ""),
            environ={"LIFELINE_MODEL__HOTS": "x", "LIFELINE_SMS__ENABLED": "maybe"},
        )
    assert "LIFELINE_MODEL__HOTS" in str(exc.value) and "LIFELINE_SMS__ENABLED" in str(exc.value)


def test_teams_cannot_be_set_from_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"LIFELINE_TEAMS__ID: \[teams\] is a list of tables"):
        load_settings(write(tmp_path, ""), environ={"LIFELINE_TEAMS__ID": "boat-9"})


def test_config_variable_and_other_environment_are_not_settings(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    env = {"LIFELINE_CONFIG": str(path), "LIFELINE": "x", "LIFELINEX": "y", "HOME": "/root"}
    assert load_settings(None, environ=env) == Settings()


# ---- values that look plausible but cannot work ------------------------------------------------


@pytest.mark.parametrize("key", ["coordinators", "responders"])
def test_matrix_people_need_full_matrix_ids(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, f'[matrix]\n{key} = ["@ok:example.org", "alice"]\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    text = str(exc.value)
    assert f"matrix.{key}" in text and "@local:server" in text and "'alice'" in text
    assert "@ok:example.org" not in text.split("got", 1)[1]


def test_full_matrix_ids_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[matrix]\ncoordinators = ["@alice:example.org", "@bob:10.0.0.2:8448"]\n'
        'responders = ["@r.1_x=y/z:[::1]:8448"]\n',
    )
    s = load_settings(path, environ={})
    assert s.matrix.coordinators == ["@alice:example.org", "@bob:10.0.0.2:8448"]


@pytest.mark.parametrize("host", ["127.0.0.1:11434", "localhost", "ollama.lan:8080", "ftp://x"])
def test_model_host_needs_http_scheme(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(write(tmp_path, f'[model]\nhost = "{host}"\n'), environ={})
    assert "model.host" in str(exc.value) and "http://" in str(exc.value)
    assert host in str(exc.value)


def test_matrix_homeserver_needs_http_scheme_when_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"matrix.homeserver: must be a URL"):
        load_settings(write(tmp_path, '[matrix]\nhomeserver = "matrix.org"\n'), environ={})
    s = load_settings(write(tmp_path, '[matrix]\nhomeserver = ""\n'), environ={})
    assert s.matrix.homeserver == ""  # empty: local drill homeserver


@pytest.mark.parametrize("level", ["info", "Info", "debug", "WARNING", " error "])
def test_logging_level_any_case(tmp_path: Path, level: str) -> None:
    s = load_settings(write(tmp_path, f'[logging]\nlevel = "{level}"\n'), environ={})
    assert s.logging.level == level.strip().upper()


def test_unknown_logging_level_still_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="logging.level"):
        load_settings(write(tmp_path, '[logging]\nlevel = "verbose"\n'), environ={})


def test_cli_names_unknown_env_variable_and_prints_config_words(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_")}
    env |= {"LIFELINE_MODEL_HOST": "http://127.0.0.1:2", "LIFELINE_TEAMS__ID": "boat-9"}
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(write(tmp_path, "")), "incidents"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 2
    assert "LIFELINE_MODEL_HOST matches no setting; did you mean LIFELINE_MODEL__HOST?" in (
        proc.stderr
    )
    assert "LIFELINE_TEAMS__ID: [teams] is a list of tables" in proc.stderr  # not rich markup
