"""Drill scenario files and victim templates: shipped files load, mistakes get clear errors,
templates say what the drill believes they say (the triage and head-count readers agree)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.drill import plan, report
from bot.drill import scenario as sc
from bot.headcount import people_count
from bot.models import Priority
from bot.triage import triage
from config.settings import Settings
from tests.harness.drill_evidence import clean

TEMPLATES = sc.drills_dir() / "templates"


@pytest.mark.parametrize("path", sc.available(), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_plans(path: Path) -> None:
    scenario = sc.load(path)
    planned = plan.build(scenario)
    assert planned == plan.build(scenario)  # deterministic for its seed
    reports = [p for p in planned if p.kind in ("report", "join")]
    assert len(reports) == sum(p.count for p in scenario.victims)
    assert all(0 <= p.at_s <= scenario.duration_s + 1000 for p in planned)
    assert len({p.number for p in planned}) == len(reports) + len(scenario.flooders)


def test_the_night_scenario_is_a_real_night() -> None:
    night = sc.load(sc.resolve("embankment-breach-night"))
    planned = plan.build(night)
    assert sum(p.count for p in night.victims) >= 300
    assert {p.lang for p in planned} >= {"en", "bn", "hi", "ur"}
    assert len({f.kind for f in night.faults}) >= 3


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """
name = "t"
duration_s = 60
areas = ["Ulipur"]
[[teams]]
id = "boat-1"
[[victims]]
name = "v"
count = 2
"""


def test_a_minimal_scenario_is_valid(tmp_path: Path) -> None:
    scenario = sc.load(write(tmp_path, BASE))
    assert scenario.speed == 1 and scenario.staff.approve_critical_after_s == 60


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[staff]\naprove_critical_after_s = 5\n", "did you mean 'approve_critical_after_s'?"),
        ('[[faults]]\nkind = "homeserver_down"\nat_s = 5\nfor_s = 5\nfor = 3\n', "unknown key"),
        ("[promises]\nack_slak_s = 3\n", "did you mean 'ack_slack_s'?"),
        ('[[faults]]\nkind = "homeserver_dwn"\nat_s = 5\nfor_s = 5\n', "faults.0.kind"),
        ('[[faults]]\nkind = "model_down"\nat_s = 500\nfor_s = 5\n', "after the end"),
        ("[sim]\nsend_per_minute = 0\n", "sim.send_per_minute"),
    ],
)
def test_mistakes_are_named_with_a_hint(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.load(write(tmp_path, BASE + extra))
    assert expected in str(err.value) and "s.toml" in str(err.value)


def test_a_misspelt_top_level_key_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(sc.ScenarioError) as err:
        sc.load(write(tmp_path, "speeed = 4\n" + BASE))
    assert "  speeed: unknown key (did you mean 'speed'?)" in str(err.value)


def test_a_misspelt_victim_key_and_language_get_hints(tmp_path: Path) -> None:
    text = BASE.replace("count = 2\n", "count = 2\nlifethreat = 0.5\nlanguages = {bengali = 1}\n")
    with pytest.raises(sc.ScenarioError) as err:
        sc.load(write(tmp_path, text))
    assert "victims.0.lifethreat: unknown key (did you mean 'life_threat'?)" in str(err.value)
    text = BASE.replace("count = 2\n", "count = 2\nlanguages = {bm = 1}\n")
    with pytest.raises(sc.ScenarioError) as err:
        sc.load(write(tmp_path, text))
    assert "unknown language(s) bm (did you mean 'bn'?)" in str(err.value)


def test_broken_toml_and_a_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(sc.ScenarioError, match="not valid TOML"):
        sc.load(write(tmp_path, "name = "))
    with pytest.raises(sc.ScenarioError, match="no such scenario file"):
        sc.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("lang", sc.LANGS)
def test_templates_mean_what_the_drill_says(lang: str) -> None:
    """A life-threat template is rated critical by the model-free triage and states its head
    count; keyword templates are commands. (Otherwise a drill would judge the gateway on texts
    that do not say what the drill thinks.)"""
    data = tomllib.loads((TEMPLATES / f"{lang}.toml").read_text(encoding="utf-8"))
    for text in data["critical"]:
        filled = text.format(n=6, place="Char Bhadrasan")
        verdict = triage(filled)
        assert verdict.priority is Priority.CRITICAL, filled
        assert people_count(filled) == 6, filled
    for text in data["other"]:
        assert triage(text.format(n=6, place="Ulipur")).priority is not Priority.CRITICAL, text
    for kind in ("status", "join"):
        for text in data[kind]:
            assert triage(text.format(place="Ulipur")).keyword is not None, text


def test_the_report_renders_and_re_renders_from_its_json(tmp_path: Path) -> None:
    from bot.drill import checks

    ev = clean()
    data = report.build(ev, checks.run_all(ev))
    report.write(tmp_path, data)
    assert (tmp_path / "timeline.png").stat().st_size > 5000
    csv_rows = (tmp_path / "victims.csv").read_text(encoding="utf-8").splitlines()
    assert csv_rows[0].startswith("victim,number,lang") and len(csv_rows) == 5
    (tmp_path / "timeline.png").unlink()
    again = report.load(tmp_path)
    report.render_files(tmp_path, again)
    assert (tmp_path / "timeline.png").exists() and report.passed(again)
    victim_a = next(v for v in again["victims"] if v["number"] == "+8801700000001")
    assert (
        victim_a["ack_s"] == 3.0 and victim_a["approved_s"] == 20.0 and victim_a["alert_s"] == 2.0
    )
    # a Matrix victim's ack is the bot's message its own client saw in the DM
    photo = next(v for v in again["victims"] if v["media"] == "photo")
    assert photo["channel"] == "matrix" and photo["ack_s"] == 1.0


@pytest.mark.parametrize(
    ("fault", "modems", "message"),
    [
        ('kind = "sim_blocked"\nmodem = 3', 2, "names modem 3, but [sim] modems = 2"),
        ('kind = "modem_unplugged"\nmodem = 2', 1, "names modem 2, but [sim] modems = 1"),
        ('kind = "sim_blocked"', 1, "sim_blocked needs [sim] modems >= 2"),
        ('kind = "modem_unpluged"', 2, "modem_unplugged"),
    ],
)
def test_modem_faults_name_a_modem_the_drill_has(
    tmp_path: Path, fault: str, modems: int, message: str
) -> None:
    text = BASE + f"[sim]\nmodems = {modems}\n[[faults]]\nat_s = 5\nfor_s = 10\n{fault}\n"
    with pytest.raises(sc.ScenarioError) as err:
        sc.load(write(tmp_path, text))
    assert message in str(err.value)


def test_the_new_fault_kinds_load(tmp_path: Path) -> None:
    faults = "".join(
        f'[[faults]]\nkind = "{kind}"\nat_s = 5\nfor_s = 10\nmodem = 2\n'
        for kind in ("modem_unplugged", "sim_blocked", "model_drop_tools")
    )
    scenario = sc.load(write(tmp_path, BASE + "[sim]\nmodems = 2\n" + faults))
    assert [f.modem for f in scenario.faults] == [2, 2, 2]


def test_drill_teams_are_on_the_board_map(tmp_path: Path) -> None:
    """Every team of a drill has a base position the gateway accepts (explicit or derived from
    the base's name), so the board shows the teams a trainer's coordinators dispatch."""
    text = BASE.replace('id = "boat-1"\n', 'id = "boat-1"\nbase = "Ulipur ghat"\n')
    text += '[[teams]]\nid = "med-1"\nkind = "medical"\nbase_at = [25.6, 89.5]\n'
    teams = [plan.team_config(t) for t in sc.load(write(tmp_path, text)).teams]
    settings = Settings.model_validate({"teams": teams})
    assert settings.teams[0].base_at == plan.area_point("Ulipur ghat")
    assert settings.teams[1].base_at == (25.6, 89.5)
    night = sc.load(sc.resolve("embankment-breach-night"))
    placed = Settings.model_validate({"teams": [plan.team_config(t) for t in night.teams]})
    assert all(t.base_at for t in placed.teams)
    with pytest.raises(sc.ScenarioError, match="latitude 90.5 is outside"):
        sc.load(write(tmp_path, text.replace("[25.6, 89.5]", "[90.5, 25.6]")))
