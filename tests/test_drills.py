"""Short scenario drills end to end: a real `lifeline run` subprocess, the drill's own Synapse,
libGammu dummy modems, the Ollama stand-in; every promise must hold (zero violations).

Budgets come from each scenario (SIM rate, [promises]) and are generous on purpose: a loaded
2-core machine slows everything, and a drill judges promises, not speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.drill import report
from bot.drill import scenario as sc
from bot.drill.runner import DrillRun, Options

pytestmark = [pytest.mark.drill, pytest.mark.timeout(1200)]


async def run_drill(name: str, out: Path) -> dict[str, object]:
    said: list[str] = []
    ev, results = await DrillRun(sc.load(sc.resolve(name)), out, Options(say=said.append)).run()
    data = report.build(ev, results)
    report.write(out, data)
    broken = {
        r.promise: [f"{v.subject}: {v.evidence}" for v in r.violations[:5]]
        for r in results
        if not r.ok
    }
    assert not broken, f"{name}: promises broken {broken}; debrief in {out}; {said}"
    idle = {"duplicates"}  # nothing sent twice is the usual case
    if not any(i.media for i in ev.journal.injected):
        idle |= {"media_to_model", "photo_located"}  # an SMS-only drill has no media
    assert all(r.checked for r in results if r.promise not in idle), results
    assert len(ev.journal.injected) >= 20 and ev.journal.notices, said
    assert all(f.end is not None for f in ev.journal.faults), ev.journal.faults
    assert (out / "timeline.png").exists() and (out / "victims.csv").exists()
    return data


async def test_surge_with_a_homeserver_outage(tmp_path: Path) -> None:
    data = await run_drill("surge-homeserver-outage", tmp_path)
    kinds = [f["kind"] for f in data["faults"]]  # type: ignore[index]
    assert kinds == ["homeserver_down", "modem_unplugged"]
    # Matrix victims DMed the bot, some while the homeserver was down (their client retried),
    # with voice notes and photos that reached the model; each saw the bot's answer in its DM.
    dm = [v for v in data["victims"] if v["channel"] == "matrix"]  # type: ignore[union-attr, index]
    assert len(dm) == 10 and all(v["ack_s"] is not None for v in dm)
    assert any(v["waited_s"] > 1 for v in dm), "no Matrix victim met the homeserver outage"
    assert data["media_in"] == {"voice": 5, "photo": 2}
    checked = {p["promise"]: p["checked"] for p in data["promises"]}  # type: ignore[union-attr]
    assert checked["media_to_model"] == 7 and checked["photo_located"] == 2


async def test_model_outage_with_a_flooder_and_a_hostile_sender(tmp_path: Path) -> None:
    data = await run_drill("model-outage-flooder", tmp_path)
    victims = data["victims"]
    assert any(v["kind"] == "hostile" for v in victims)  # type: ignore[union-attr, index]
    kinds = {f["kind"] for f in data["faults"]}  # type: ignore[index]
    assert {"sim_blocked", "model_drop_tools"} <= kinds


async def test_crash_loop_during_approvals(tmp_path: Path) -> None:
    data = await run_drill("crash-loop-approvals", tmp_path)
    assert len(data["faults"]) == 3  # type: ignore[arg-type]
    approved = [v for v in data["victims"] if v["approved_s"] is not None]  # type: ignore[union-attr, index]
    assert approved, "no dispatch was approved during the crash loop"
