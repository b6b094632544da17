"""The drill's modem, SIM and model faults do what the scenario says, on real libGammu dummy
modems (in process, without a whole drill): an unplugged modem goes down and the watchdog brings
it back with the SMS that waited on its SIM; a blocked SIM's sends fail over to another SIM; a
model that drops its tool calls answers a life threat with advice only."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import gammu
import pytest

from bot import sim
from bot.drill import hardware
from bot.drill.model import DrillModel
from bot.drill.plan import PlannedSms
from bot.drill.simnet import NetworkStateMachine
from bot.transports.sms import ModemPool
from tests.harness.gammu_phone import DummyPhone, Recorder, wait_for

NUMBER = "+8801711000123"


async def test_an_unplugged_modem_goes_down_and_comes_back_with_what_waited(
    tmp_path: Path,
) -> None:
    phone = DummyPhone(tmp_path / "sim1")
    got = Recorder()
    modem = phone.modem(got, read_timeout_s=3.0, call_timeout_s=3.0)
    task = asyncio.create_task(modem.run())
    try:
        await wait_for(lambda: modem.health.state == "up", 10)
        hardware.unplug(phone.path)
        phone.inject_sms(NUMBER, "water in the house, 4 of us")  # the network holds it
        await wait_for(lambda: modem.health.state in ("down", "reinit"), 15)
        assert modem.health.last_error
        await asyncio.sleep(1.0)  # re-inits fail while it is unplugged
        assert modem.health.state != "up" and got.messages == []
        hardware.replug(phone.path)
        await wait_for(lambda: len(got.messages) == 1, 20)
        assert modem.health.state == "up"
        assert got.messages[0].text == "water in the house, 4 of us"
        # Persist before delete: the delete follows the committed delivery, so wait for it.
        await wait_for(lambda: not sim.inbox_files(phone.path), 10)
    finally:
        hardware.replug(phone.path)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await modem.close()


async def test_a_blocked_sim_fails_over_and_sends_again_once_unblocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gammu, "StateMachine", NetworkStateMachine)  # what simnet.install does
    a, b = DummyPhone(tmp_path / "a", name="a"), DummyPhone(tmp_path / "b", name="b")
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 600, "b": 600})
    try:
        await ma.poll_once()
        await mb.poll_once()
        hardware.block(a.path)
        name, _ = await pool.send(NUMBER, "boat on the way", idem_key="1", prefer="a")
        assert name == "b"
        assert "barred" in (ma.health.last_error or "")
        hardware.unblock(a.path)
        name, _ = await pool.send(NUMBER, "stay on the roof", idem_key="2", prefer="a")
        assert name == "a"
        sent = sim.read_outbox({"a": a.path, "b": b.path})
        assert [(m["modem"], m["text"]) for m in sent] == [
            ("b", "boat on the way"),
            ("a", "stay on the roof"),
        ]
    finally:
        await pool.close()


def _body(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"The sender wrote:\n<<<\n{text}\n>>>"}]}


def test_a_model_that_drops_tool_calls_answers_a_life_threat_without_one() -> None:
    threat = "HELP 5 of us on the roof in Ulipur, water rising"
    planned = [
        PlannedSms(0, NUMBER, threat, "p/0", "report", "en", True, 5, "Ulipur", 0),
    ]
    model = DrillModel(planned, omit_people_count=0.0, reply_delay_s=0.0)
    assert model.hook(_body(threat)).get("tool_calls")
    model.set_fault("drop_tools")
    dropped = model.hook(_body(threat))
    assert not dropped.get("tool_calls") and dropped.get("text")
    model.set_fault(None)
    assert model.hook(_body(threat)).get("tool_calls")


async def test_a_send_queued_behind_a_hung_read_fails_over_instead_of_vanishing(
    tmp_path: Path,
) -> None:
    """Found by the surge drill's modem_unplugged: a send waiting on the modem thread behind a
    read that hangs was cancelled with the abandoned thread, and the CancelledError (no one
    cancelled the sender) left its outbox row 'sending' for ever. It must be a transient
    SendError, so the pool tries another SIM."""
    from bot.transports.sms import SendError

    a, b = DummyPhone(tmp_path / "a", name="a"), DummyPhone(tmp_path / "b", name="b")
    ma = a.modem(Recorder(), read_timeout_s=3.0, call_timeout_s=30.0)
    mb = b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 600, "b": 600})
    try:
        await ma.poll_once()
        await mb.poll_once()
        hardware.unplug(a.path)
        reading = asyncio.create_task(ma.poll_once())  # blocks on the pipe until the timeout
        await asyncio.sleep(0.2)
        with pytest.raises(SendError) as err:
            await ma.send(NUMBER, "stay on the roof", idem_key="1")
        assert err.value.transient
        with contextlib.suppress(Exception):
            await reading
        name, _ = await pool.send(NUMBER, "boat on the way", idem_key="2", prefer="a")
        assert name == "b"
    finally:
        hardware.replug(a.path)
        await pool.close()
