"""ModemPool on real libGammu dummy phones: choice, failover, pacing, supervision."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from bot import sim
from bot.transports.sms import Modem, ModemError, ModemPool, SendError
from tests.harness.gammu_phone import DummyPhone, Recorder, wait_for

NUMBER = "+8801711000123"


@pytest.fixture
def phones(tmp_path: Path) -> tuple[DummyPhone, DummyPhone]:
    return DummyPhone(tmp_path / "a", name="a"), DummyPhone(tmp_path / "b", name="b")


def outbox(*phones: DummyPhone) -> list[dict[str, object]]:
    return sim.read_outbox({p.name: p.path for p in phones})


async def _close(*modems: Modem) -> None:
    for m in modems:
        await m.close()


async def test_prefer_wins_when_healthy(phones: tuple[DummyPhone, DummyPhone]) -> None:
    a, b = phones
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    try:
        await ma.poll_once()
        await mb.poll_once()
        assert (await pool.send(NUMBER, "from b", idem_key="1", prefer="b"))[0] == "b"
        assert (await pool.send(NUMBER, "from a", idem_key="2", prefer="a"))[0] == "a"
        sent = outbox(a, b)
        assert [(m["modem"], m["text"]) for m in sent] == [("b", "from b"), ("a", "from a")]
    finally:
        await _close(ma, mb)


async def test_failover_when_preferred_modem_is_down(
    phones: tuple[DummyPhone, DummyPhone], tmp_path: Path
) -> None:
    a, b = phones
    a.path.parent.mkdir(parents=True, exist_ok=True)
    a.path.write_text("not a directory")  # modem a cannot Init
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    with pytest.raises(ModemError, match="device"):
        await ma.poll_once()
    assert ma.health.state == "down"
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    try:
        name, ref = await pool.send(NUMBER, "boat on the way", idem_key="k", prefer="a")
        assert name == "b" and ref.startswith("b:")
        assert [m["text"] for m in sim.read_outbox({"b": b.path})] == ["boat on the way"]
    finally:
        await _close(ma, mb)


async def test_failover_on_transient_error_mid_send(phones: tuple[DummyPhone, DummyPhone]) -> None:
    a, b = phones
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    try:
        await ma.poll_once()
        await mb.poll_once()
        # The StateMachine of modem a dies under it (like a USB modem reset): SendSMS fails with
        # ERR_NOTCONNECTED, the pool retries on b, a goes down.
        await ma._call(lambda sm: sm.Terminate(), 5.0, "test terminate")
        name, _ = await pool.send(NUMBER, "stay on the roof", idem_key="k", prefer="a")
        assert name == "b"
        assert ma.health.state == "down"
        assert "ERR_NOTCONNECTED" in (ma.health.last_error or "")
        assert [(m["modem"], m["text"]) for m in outbox(a, b)] == [("b", "stay on the roof")]
    finally:
        await _close(ma, mb)


async def test_all_down_is_transient(phones: tuple[DummyPhone, DummyPhone]) -> None:
    a, b = phones
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 60, "b": 60})
    await ma.close()
    await mb.close()
    with pytest.raises(SendError) as err:
        await pool.send(NUMBER, "hello", idem_key="k")
    assert err.value.transient is True
    assert "a=down" in err.value.reason and "b=down" in err.value.reason


async def test_permanent_error_not_retried_elsewhere(
    phones: tuple[DummyPhone, DummyPhone],
) -> None:
    a, b = phones
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    try:
        await ma.poll_once()
        await mb.poll_once()
        with pytest.raises(SendError) as err:
            await pool.send("+" + "9" * 30, "hello", idem_key="k", prefer="a")
        assert err.value.transient is False
        assert ma.health.consecutive_errors == 0  # a permanent error says nothing about the modem
        assert mb.health.sent == 0 and ma.health.sent == 0
        assert outbox(a, b) == []
        assert ma.health.state == "up" and mb.health.state == "up"
    finally:
        await _close(ma, mb)


async def test_rate_limit_paces_parts(phones: tuple[DummyPhone, DummyPhone]) -> None:
    """120/min = one part every 0.5 s, no initial burst; a 3-part message costs 3 tokens."""
    a, _ = phones
    ma = a.modem(Recorder())
    pool = ModemPool([ma], {"a": 120})
    granted: list[float] = []
    limiter = pool._limiters["a"]
    real_acquire = limiter.acquire

    async def recording_acquire(amount: float = 1) -> None:
        for _ in range(int(amount)):  # one grant per part, each recorded when it is given
            await real_acquire(1)
            granted.append(time.monotonic())

    limiter.acquire = recording_acquire  # type: ignore[method-assign]
    try:
        await ma.poll_once()
        t0 = time.monotonic()
        for i in range(3):
            await pool.send(NUMBER, f"msg {i}", idem_key=str(i))
        await pool.send(NUMBER, "z" * 400, idem_key="long")  # 3 parts
        elapsed = time.monotonic() - t0
        # 6 parts: the first goes at once, then 5 intervals of 0.5 s.
        assert elapsed >= 2.4, elapsed
        assert elapsed < 6.0, elapsed
        sent = outbox(a)
        assert [m["parts"] for m in sent] == [1, 1, 1, 3]
        # The per-gap check is on the limiter's grants, not the files' times: a file's time is
        # the grant plus however long the modem thread took to run SendSMS (scheduling noise).
        assert len(granted) == 6
        assert all(t2 - t1 >= 0.49 for t1, t2 in itertools.pairwise(granted)), granted
    finally:
        await ma.close()


async def test_least_loaded_spreads_concurrent_sends(
    phones: tuple[DummyPhone, DummyPhone],
) -> None:
    a, b = phones
    ma, mb = a.modem(Recorder()), b.modem(Recorder())
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    try:
        await ma.poll_once()
        await mb.poll_once()
        t0 = time.monotonic()
        results = await asyncio.gather(
            *(pool.send(NUMBER, f"advisory {i}", idem_key=str(i)) for i in range(8))
        )
        elapsed = time.monotonic() - t0
        used = [name for name, _ in results]
        assert used.count("a") == 4 and used.count("b") == 4, used
        assert 1.4 <= elapsed < 8.0, elapsed  # 4 per SIM at 0.5 s spacing, in parallel
        assert len(outbox(a, b)) == 8
    finally:
        await _close(ma, mb)


async def test_run_keeps_good_modem_working_while_other_is_down(
    phones: tuple[DummyPhone, DummyPhone],
) -> None:
    a, b = phones
    a.path.parent.mkdir(parents=True, exist_ok=True)
    a.path.write_text("not a directory")
    rec_a, rec_b = Recorder(), Recorder()
    ma = a.modem(rec_a, backoff_initial_s=0.05, backoff_max_s=0.2)
    mb = b.modem(rec_b)
    pool = ModemPool([ma, mb], {"a": 120, "b": 120})
    task = asyncio.create_task(pool.run())
    try:
        await wait_for(lambda: mb.health.state == "up", what="b up")
        sim.inject_sms(b.path, NUMBER, "trapped on roof")
        await wait_for(lambda: len(rec_b.messages) == 1, what="b receives")
        await wait_for(lambda: ma.health.consecutive_errors >= 3, what="a keeps retrying")
        states = {h.name: h.state for h in pool.health()}
        assert states["b"] == "up" and states["a"] in ("down", "reinit")
        assert (await pool.send(NUMBER, "boat coming", idem_key="r1", prefer="a"))[0] == "b"
        # a comes back by itself
        a.path.unlink()
        a.path.mkdir()
        await wait_for(lambda: ma.health.state == "up", what="a recovers")
        sim.inject_sms(a.path, NUMBER, "second phone")
        await wait_for(lambda: len(rec_a.messages) == 1, what="a receives")
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.close()


def test_pool_rejects_missing_rate(phones: tuple[DummyPhone, DummyPhone]) -> None:
    a, b = phones
    with pytest.raises(ValueError, match="send_per_minute"):
        ModemPool([a.modem(Recorder()), b.modem(Recorder())], {"a": 10})
