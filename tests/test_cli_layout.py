"""The inspecting commands as an operator sees them in an 80-column terminal, and `sim sms` run
from the wrong directory. Real CLI subprocesses over a real database and dummy-modem directory."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from bot.sim import write_sent
from bot.transports.sms import encode_text
from tests.harness.process import PYTHON, ROOT, VICTIM, child_env, config_data, make_db, to_toml

LONG = (
    "Water is rising very fast near the Char Bhadrasan primary school, my mother cannot walk "
    "and we are four people with two small children on the tin roof, please send a boat now"
)
ENDING = "please send a boat now"


def run_cli(
    config: Path, *args: str, columns: int, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {**child_env(), "COLUMNS": str(columns), "LINES": "50"}
    return subprocess.run(
        [PYTHON, "-m", "bot", "--config", str(config), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    """A config whose database holds messages and cases with long text, and whose simulated
    modem has sent a long reply."""
    config = tmp_path / "lifeline.toml"
    config.write_text(to_toml(config_data(tmp_path, "http://127.0.0.1:9")), encoding="utf-8")
    db_path = tmp_path / "lifeline.db"
    make_db(db_path)
    now = time.time()
    conn = sqlite3.connect(db_path)
    with conn:
        cur = conn.execute(
            "INSERT INTO incidents (case_code, priority, status, location, people_count, needs,"
            " reporter, channel, conversation, created_at, updated_at)"
            " VALUES ('LF-4821', 0, 'open', ?, 4, ?, ?, 'sms', ?, ?, ?)",
            (
                "Char Bhadrasan primary school, the tin roof behind the mosque, east side",
                "boat rescue, an elderly woman who cannot walk, two small children",
                VICTIM,
                VICTIM,
                now,
                now,
            ),
        )
        incident = cur.lastrowid
        for i, text in enumerate([LONG, "ok thanks"]):
            conn.execute(
                "INSERT INTO inbox (channel, dedup_key, peer, conversation, order_key, text,"
                " status, incident_id, received_at, created_at, updated_at)"
                " VALUES ('sms', ?, ?, ?, 'o', ?, 'done', ?, ?, ?, ?)",
                (f"k{i}", VICTIM, VICTIM, text, incident, now + i, now + i, now + i),
            )
        conn.execute(
            "INSERT INTO outbox (idem_key, channel, peer, conversation, text, status, error,"
            " incident_id, created_at, updated_at)"
            " VALUES ('o1', 'sms', ?, ?, ?, 'dead', ?, ?, ?, ?)",
            (
                VICTIM,
                VICTIM,
                "We received your message (case LF-4821). " + LONG,
                "modem refused: invalid destination number after 6 attempts",
                incident,
                now + 3,
                now + 3,
            ),
        )
    conn.close()
    device = tmp_path / "modem-sim1"
    parts = encode_text("A boat team is on its way. " + LONG)
    for part in parts:
        part.update({"Number": VICTIM, "SMSC": {"Location": 1}})
    write_sent(device, parts, key="s1", when=now)
    return config


def body_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("command", "rows"),
    [(["messages"], 3), (["incidents"], 1), (["sim", "outbox"], 1)],
)
def test_tables_fit_80_columns_one_line_per_row(
    filled: Path, command: list[str], rows: int
) -> None:
    done = run_cli(filled, *command, columns=80)
    assert done.returncode == 0, done.stderr
    lines = body_lines(done.stdout)
    assert all(cell_len(line) <= 80 for line in lines), done.stdout
    # title, header, rule, then exactly one line per row: nothing wrapped word by word
    assert len(lines) == 3 + rows, done.stdout
    assert "…" in done.stdout  # long text is cut, visibly
    assert ENDING not in done.stdout
    if command == ["messages"]:
        assert "ok thanks" in done.stdout  # short text is shown whole
        assert "LF-4821" in done.stdout and "dead" in done.stdout


@pytest.mark.parametrize(
    ("command", "ending", "hidden"),
    [
        (["messages"], ENDING, "channel"),
        (["incidents"], "mosque, east side", "reporter"),
        (["sim", "outbox"], ENDING, ""),
    ],
)
def test_wide_shows_every_column_and_all_the_text(
    filled: Path, command: list[str], ending: str, hidden: str
) -> None:
    narrow = run_cli(filled, *command, columns=300)
    assert not hidden or hidden not in narrow.stdout
    done = run_cli(filled, *command, "--wide", columns=300)
    assert done.returncode == 0, done.stderr
    assert ending in done.stdout
    assert hidden in done.stdout


def test_sim_sms_from_another_directory_refuses_and_names_the_path(tmp_path: Path) -> None:
    """The default device is relative (var/modem-sim1): run elsewhere, it would be a new empty
    directory nobody reads. Refuse, naming the absolute path; create nothing."""
    data = config_data(tmp_path, "http://127.0.0.1:9")
    data["sms"] = {"modems": [{"name": "sim1", "device": "var/modem-sim1"}]}
    config = tmp_path / "lifeline.toml"
    config.write_text(to_toml(data), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_cli(config, "sim", "sms", "--from", VICTIM, "help", columns=200, cwd=elsewhere)
    assert done.returncode == 2, done.stdout + done.stderr
    assert str(elsewhere / "var" / "modem-sim1") in done.stderr
    assert "injected" not in done.stdout
    assert list(elsewhere.iterdir()) == []

    # From the directory the gateway uses (its modem directory exists), it injects, and says
    # that no gateway is reading it right now.
    home = tmp_path / "home"
    (home / "var" / "modem-sim1").mkdir(parents=True)
    done = run_cli(config, "sim", "sms", "--from", VICTIM, "help", columns=200, cwd=home)
    assert done.returncode == 0, done.stderr
    assert "injected 1 part" in done.stdout
    assert "no gateway is reading" in done.stdout
    assert any((home / "var" / "modem-sim1" / "sms" / "1").iterdir())
