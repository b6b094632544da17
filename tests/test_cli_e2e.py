"""`lifeline run` as a real subprocess, driven only through the CLI a drill operator would use:
`sim sms` in, `sim outbox --json` / `incidents --json` / `messages --json` / `teams --json` out,
`doctor` for health, SIGTERM to stop. Real SQLite, real libGammu dummy modem, the real ollama
client against an in-process Ollama stand-in thread.
The process and CLI helpers live in tests/harness/process.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply
from tests.harness.process import (
    PYTHON,
    VICTIM,
    GatewayProcess,
    child_env,
    config_data,
    dead_url,
    make_db,
    to_toml,
    wait_until,
    write_config,
)

# ---- tests -------------------------------------------------------------------------------------

INCIDENT_KEYS = {
    "case",
    "priority",
    "status",
    "location",
    "people_count",
    "needs",
    "reporter",
    "channel",
    "created_at",
    "updated_at",
    "dispatches",
}
MESSAGE_KEYS = {"direction", "channel", "peer", "text", "status", "case", "created_at"}


def test_run_sms_to_incident_through_the_cli(tmp_path: Path, standin: OllamaStandIn) -> None:
    standin.push_chat(
        tool_reply(
            {
                "name": "dispatch_rescue_team",
                "arguments": {
                    "location": "Char Bhadrasan school roof",
                    "priority": "critical",
                    "people_count": 4,
                    "needs": "boat rescue",
                },
            }
        ),
        text_reply("A boat team is on its way. 1. Stay on the roof. 2. Wave a cloth."),
    )
    gw = GatewayProcess(write_config(tmp_path, standin.url, dispatch={"approval": "auto"}))
    try:
        gw.start()
        banner = gw.log_text()
        assert "LIFELINE running" in banner and "DEGRADED" not in banner
        injected_at = time.monotonic()
        done = gw.cli("sim", "sms", "--from", VICTIM, "Water rising, 4 of us on the school roof")
        assert done.returncode == 0 and "injected 1 part" in done.stdout, done.stderr

        def outbox_to_victim(n: int) -> Callable[[], list[dict[str, Any]] | None]:
            def check() -> list[dict[str, Any]] | None:
                rows = [m for m in gw.cli_json("sim", "outbox") if m["to"] == VICTIM]
                return rows if len(rows) >= n else None

            return check

        # The ack's speed is measured in bench/ (bench_intake); here only that it comes first, and
        # within a bound generous enough for a shared, overloaded 2-core machine.
        acked = wait_until(outbox_to_victim(1), timeout=30.0, every=0.05)
        ack_seconds = time.monotonic() - injected_at
        assert "received" in acked[0]["text"] and "LF-" in acked[0]["text"]
        sent = wait_until(outbox_to_victim(2), timeout=20)
        assert "Stay on the roof" in sent[1]["text"]
        assert set(sent[0]) >= {"time", "modem", "to", "parts", "coding", "text"}

        incidents = gw.cli_json("incidents")
        assert len(incidents) == 1
        inc = incidents[0]
        assert set(inc) >= INCIDENT_KEYS, set(inc) ^ INCIDENT_KEYS
        assert inc["priority"] == "critical" and inc["status"] == "assigned"
        assert inc["location"] == "Char Bhadrasan school roof" and inc["people_count"] == 4
        assert inc["reporter"] == VICTIM and inc["channel"] == "sms"
        assert inc["case"] in sent[0]["text"]
        assert inc["dispatches"] == [
            {**inc["dispatches"][0], "team": "boat-1", "status": "assigned"}
        ]
        for stamp in (inc["created_at"], inc["updated_at"]):
            assert stamp.endswith("+00:00") and "T" in stamp

        msgs = gw.cli_json("messages")
        assert all(set(m) >= MESSAGE_KEYS for m in msgs)
        directions = [(m["direction"], m["status"]) for m in msgs]
        assert directions.count(("in", "done")) == 1
        assert directions.count(("out", "sent")) == 2
        assert {m["case"] for m in msgs} == {inc["case"]}
        assert all(m["peer"] == VICTIM and m["channel"] == "sms" for m in msgs)

        teams = {t["id"]: t for t in gw.cli_json("teams")}
        assert set(teams) == {"boat-1", "boat-2", "med-1"}
        assert teams["boat-1"]["status"] == "busy" and teams["boat-2"]["status"] == "available"

        # human output masks the number; JSON (the contract for tools) does not
        table = gw.cli("incidents")
        assert table.returncode == 0 and VICTIM not in table.stdout

        # an online backup while the gateway runs: a consistent copy, never overwritten
        stick = tmp_path / "usb"
        stick.mkdir()
        done = gw.cli("backup", str(stick))
        assert done.returncode == 0, done.stderr
        [copy] = list(stick.iterdir())
        with sqlite3.connect(copy) as bk:
            assert bk.execute("SELECT case_code FROM incidents").fetchall() == [(inc["case"],)]
        again = gw.cli("backup", str(copy))
        assert again.returncode == 2 and "not overwriting" in again.stderr

        code, seconds = gw.terminate()
        assert code == 0, gw.log_text()[-2000:]
        assert seconds < 15
        assert "lifeline stopped" in gw.log_text()
        assert "Traceback" not in gw.log_text()
    finally:
        gw.stop_quietly()
    assert ack_seconds < 30.0


def test_doctor_exit_codes(tmp_path: Path, standin: OllamaStandIn) -> None:
    gw = GatewayProcess(write_config(tmp_path, standin.url))
    make_db(gw.db_path)  # doctor checks the database the gateway made; it never creates one
    up = gw.cli("doctor")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "ready at" in up.stdout
    # The shipped library has no recorded review yet: a warning, and the exit code stays 0.
    assert "! protocol review: " in up.stdout and "never reviewed" in up.stdout

    down_dir = tmp_path / "down"
    down_dir.mkdir()
    gw_down = GatewayProcess(write_config(down_dir, dead_url()))
    down = gw_down.cli("doctor")
    assert down.returncode == 1, down.stdout + down.stderr
    assert "not reachable" in down.stdout
    assert "ollama serve" in down.stdout  # the fix, not just the symptom
    assert "set [model].host" in down.stdout  # config words are text, not rich markup
    assert "model health" not in down.stdout + down.stderr  # no stray log line among checks


def test_doctor_prints_config_words_literally(tmp_path: Path) -> None:
    data = config_data(tmp_path, dead_url())
    data["teams"] = []
    path = tmp_path / "lifeline.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    gw = GatewayProcess(path)
    make_db(gw.db_path)
    done = gw.cli("doctor")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no [[teams]] in the config" in done.stdout
    assert "set [model].host" in done.stdout


def test_tables_show_message_text_literally(tmp_path: Path) -> None:
    gw = GatewayProcess(write_config(tmp_path, dead_url()))
    make_db(gw.db_path)
    conn = sqlite3.connect(gw.db_path)
    with conn:
        conn.execute(
            "INSERT INTO inbox (channel, dedup_key, peer, conversation, order_key, text, error,"
            " received_at, created_at, updated_at) VALUES ('sms', 'k1', ?, 'c', 'o',"
            " '[help] [bold]roof[/bold]', '[model].host down', 1, 1, 1)",
            (VICTIM,),
        )
    conn.close()
    done = gw.cli("messages")
    assert done.returncode == 0, done.stderr
    assert "[help] [bold]roof[/bold]" in done.stdout
    assert "[model].host down" in done.stdout


HOSTILE = (
    "\x1b[2J\x1b[31mROOF\x1b[0m 4\rpeople \x1b]8;;http://x\x07link\x1b]8;;\x07 \u202eexe.txt \x9b7m"
)
UNSAFE = ("\x1b", "\x9b", "\r", "\x07", "\u202e")


def test_tables_never_pass_control_characters_to_the_terminal(tmp_path: Path) -> None:
    """An SMS with ANSI escapes, a carriage return, an OSC link and a bidi override: `messages`
    and `incidents` show it cleaned; --json keeps the value exact, the unsafe characters escaped;
    the database keeps the text as received."""
    gw = GatewayProcess(write_config(tmp_path, dead_url()))
    make_db(gw.db_path)
    conn = sqlite3.connect(gw.db_path)
    with conn:
        conn.execute(
            "INSERT INTO inbox (channel, dedup_key, peer, conversation, order_key, text,"
            " received_at, created_at, updated_at) VALUES ('sms', 'k1', ?, 'c', 'o', ?, 1, 1, 1)",
            (VICTIM, HOSTILE),
        )
        conn.execute(
            "INSERT INTO incidents (case_code, priority, location, needs, summary, reporter,"
            " channel, conversation, created_at, updated_at)"
            " VALUES ('LF-1001', 1, ?, ?, ?, ?, 'sms', ?, 1, 1)",
            ("\x1b[8mschool\u2066 roof", "boat\u202e", HOSTILE, VICTIM, VICTIM),
        )
    conn.close()
    for command in ("messages", "incidents"):
        done = gw.cli(command)
        assert done.returncode == 0, done.stderr
        assert not [c for c in UNSAFE if c in done.stdout], (command, done.stdout)
    shown = gw.cli("messages").stdout
    assert "ROOF" in shown and "[31m" not in shown and "8;;" not in shown
    raw = gw.cli("messages", "--json")
    assert not [c for c in UNSAFE if c in raw.stdout]
    assert [r["text"] for r in json.loads(raw.stdout)] == [HOSTILE]
    assert [r["location"] for r in gw.cli_json("incidents")] == ["\x1b[8mschool\u2066 roof"]
    assert gw.query("SELECT text FROM inbox") == [(HOSTILE,)]


def test_inspecting_commands_refuse_a_missing_database(tmp_path: Path) -> None:
    """Run from the wrong directory: the relative default var/lifeline.db is not there. Say so,
    naming the absolute path, instead of creating an empty database and showing "(none)"."""
    data = config_data(tmp_path, dead_url())
    del data["storage"]  # default: var/lifeline.db, relative to where the command runs
    data["sms"] = {"modems": [{"name": "sim1", "device": "var/modem-sim1"}]}
    config = tmp_path / "lifeline.toml"
    config.write_text(to_toml(data), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    expected = elsewhere / "var" / "lifeline.db"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "bot", "--config", str(config), *args],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
            check=False,
        )

    for args in (["incidents"], ["incidents", "--json"], ["messages"], ["teams", "--json"]):
        done = cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"no Lifeline database at {expected}" in done.stderr, done.stderr
        assert "[storage].path" in done.stderr
        assert done.stdout == ""
    outbox = cli("sim", "outbox")
    assert outbox.returncode == 2, outbox.stdout + outbox.stderr
    assert str(elsewhere / "var" / "modem-sim1") in outbox.stderr
    doctor = cli("doctor")
    assert f"! database: no Lifeline database at {expected}" in doctor.stdout, doctor.stdout
    assert list(elsewhere.iterdir()) == []  # nothing created where the commands ran


def test_degraded_start_acks_and_advises_then_sigterm(tmp_path: Path) -> None:
    dead = OllamaStandIn().start()
    url = dead.url
    dead.stop()
    gw = GatewayProcess(write_config(tmp_path, url))
    try:
        gw.start()
        banner = gw.log_text()
        assert "DEGRADED MODE" in banner and "lifeline doctor" in banner
        done = gw.cli("sim", "sms", "--from", VICTIM, "Need drinking water for 10 families")
        assert done.returncode == 0

        def two() -> list[dict[str, Any]] | None:
            rows = [m for m in gw.sent() if m["to"] == VICTIM]
            return rows if len(rows) >= 2 else None

        sent = wait_until(two, timeout=15)
        assert "received" in sent[0]["text"]
        assert "queued for a responder" in sent[1]["text"]
        inbox = gw.cli_json("messages")
        first_in = next(m for m in inbox if m["direction"] == "in")
        assert first_in["status"] in ("queued", "processing")  # kept for the model
        code, seconds = gw.terminate()
        assert code == 0 and seconds < 15
    finally:
        gw.stop_quietly()


def test_banner_says_simulated_and_prints_text_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import print_banner
    from bot.llm import ModelHealth
    from config.settings import Settings

    monkeypatch.setenv("COLUMNS", "200")
    s = Settings.model_validate(
        {"sms": {"modems": [{"name": "sim1", "device": str(tmp_path / "[drill]" / "modem")}]}}
    )
    print_banner(s, ModelHealth(False, False, frozenset(), None, "[model] not reachable"))
    out = capsys.readouterr().err
    assert "DEGRADED MODE" in out and "[model] not reachable" in out
    assert "SIMULATED modem 'sim1'" in out and "no real SMS is sent" in out
    assert str(tmp_path / "[drill]" / "modem") in out


def test_banner_commands_paste_as_one_line_on_a_narrow_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import print_banner
    from bot.llm import ModelHealth
    from config.settings import Settings

    monkeypatch.setenv("COLUMNS", "80")
    s = Settings.model_validate({"sms": {"modems": [{"name": "sim1", "device": "var/modem"}]}})
    print_banner(s, ModelHealth(False, False, frozenset(), None, "not reachable"))
    lines = capsys.readouterr().err.splitlines()
    [sms] = [line for line in lines if "sim sms" in line]
    assert sms.rstrip().endswith('near Char Bhadrasan school"'), sms
