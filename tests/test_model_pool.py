"""The model pool end to end: two Ollama stand-ins over HTTP (tests/harness/ollama_standin.py,
with its parallel-slot latency model), real SQLite, the whole gateway with its dummy modem.

Concurrent turns keep each conversation in order, the most urgent message goes first, a server
killed mid-turn hands the turn to the other one (one reply, one dispatch), a voice note only
goes to a server with audio, the model is loaded before the first turn, and a server with
another model is refused with the reason."""

from __future__ import annotations

import io
import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from bot.doctor import run_doctor
from bot.models import Attachment, Channel, Facts, Inbound
from config.settings import Settings
from tests.harness.gateway import (
    Gateway,
    base_config,
    running_gateway,
    tool_call,
    wait_for,
)
from tests.harness.media_samples import wav_clip
from tests.harness.ollama_standin import (
    OllamaStandIn,
    RecordedRequest,
    delayed,
    text_reply,
    tool_reply,
)

REPLY = "Help is on the way. Stay on the roof and wave a cloth."
FULL = ("completion", "vision", "audio", "tools", "thinking")


def pool_settings(
    tmp: Path, hosts: Sequence[tuple[str, OllamaStandIn, int]], **over: Any
) -> Settings:
    data = base_config(tmp, hosts[0][1].url)
    # a turn of the latency model must not hit the client timeout on a loaded test machine
    model = {**{k: v for k, v in data["model"].items() if k != "host"}, "timeout_s": 20}
    model["hosts"] = [{"name": n, "url": s.url, "slots": k} for n, s, k in hosts]
    data["model"] = {**model, **over.pop("model", {})}
    for section, values in over.items():
        data[section] = {**data.get(section, {}), **values}
    return Settings.model_validate(data)


async def all_up(gw: Gateway) -> None:
    async def up() -> bool:
        return all(h.state == "up" for h in gw.runtime.llm.statuses())

    await wait_for(up, timeout=20)


async def answered(gw: Gateway, count: int, timeout: float = 60, *, idle: bool = True) -> None:
    """``count`` model messages received and answered (``idle`` alone may run before the modem
    has read them)."""

    async def check() -> bool:
        q = "SELECT COUNT(*) FROM inbox WHERE needs_model AND status = 'done'"
        return int((await gw.rows(q))[0][0]) >= count

    await wait_for(check, timeout=timeout)
    if idle:
        await gw.idle(timeout=timeout)


def last_user(req: RecordedRequest) -> str:
    users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""


def first_turn_at(standins: Sequence[OllamaStandIn], marker: str) -> float:
    times = [r.time for s in standins for r in s.requests_to("chat") if marker in last_user(r)]
    assert times, f"no turn for {marker!r}"
    return min(times)


async def test_concurrent_turns_keep_each_conversation_in_order(tmp_path: Path) -> None:
    with (
        OllamaStandIn(default=text_reply(REPLY), turn_s=0.4, num_parallel=2) as gpu1,
        OllamaStandIn(default=text_reply(REPLY), turn_s=0.4, num_parallel=2) as gpu2,
    ):
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 2), ("gpu2", gpu2, 2)])
        senders = [f"+88017000001{i:02d}" for i in range(4)]
        async with running_gateway(settings) as gw:
            await all_up(gw)
            for k in range(3):
                for i, number in enumerate(senders):
                    gw.sms_in(number, f"update {k} from family {i}: water still rising here")
            await answered(gw, 12, timeout=90)
            done = {
                (r["peer"], r["text"]): float(r["done_at"])
                for r in await gw.rows("SELECT peer, text, done_at FROM inbox WHERE needs_model")
            }
        for i, number in enumerate(senders):
            texts = [f"update {k} from family {i}: water still rising here" for k in range(3)]
            for earlier, later in itertools.pairwise(texts):
                # the later message's turn starts only after the earlier one is answered
                assert first_turn_at([gpu1, gpu2], later) >= done[(number, earlier)]
        # and the turns of different conversations did run at the same time, on both servers
        assert gpu1.max_running == 2 and gpu2.max_running == 2


async def test_most_urgent_message_is_taken_first(tmp_path: Path) -> None:
    with (
        # turns long enough that the urgent SMS is polled and committed while the first two
        # still run, even on a loaded machine
        OllamaStandIn(default=text_reply(REPLY), turn_s=5.0) as gpu1,
        OllamaStandIn(default=text_reply(REPLY), turn_s=5.0) as gpu2,
    ):
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 1), ("gpu2", gpu2, 1)])
        async with running_gateway(settings) as gw:
            await all_up(gw)
            for i in range(6):
                gw.sms_in(f"+88017110000{i:02d}", f"is the relief camp {i} open today?")

            async def six_waiting() -> bool:
                rows = await gw.rows("SELECT COUNT(*) FROM inbox WHERE needs_model")
                return rows[0][0] == 6 and gpu1.running == 1 and gpu2.running == 1

            await wait_for(six_waiting, timeout=20)
            urgent = "+8801999999999"
            gw.sms_in(urgent, "my child is drowning near Kalikapur ghat")

            async def committed() -> bool:
                return bool(await gw.rows("SELECT 1 FROM inbox WHERE peer = ?", urgent))

            await wait_for(committed, timeout=20)
            # both first turns still run: every later claim sees the life threat
            assert len(gpu1.requests_to("chat")) + len(gpu2.requests_to("chat")) == 2
            await gw.wait_sent(urgent, 2, timeout=40)
            await answered(gw, 7)
        turns = sorted((r.time, last_user(r)) for s in (gpu1, gpu2) for r in s.requests_to("chat"))
        order = [text for _, text in turns]
        # the next slot to come free took it, ahead of 4 questions; the two slots free up at
        # the same moment, so which of their requests reaches its server first is a coin toss
        assert any("drowning" in text for text in order[2:4]), order
        assert not any("drowning" in text for text in order[4:]), order
        assert gpu1.requests_to("chat") and gpu2.requests_to("chat")


async def test_host_killed_mid_turn_the_turn_completes_on_the_other(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    victim = "+8801712345678"
    dispatch = tool_call(
        "dispatch_rescue_team",
        location="Char Bhadrasan school roof",
        priority="critical",
        people_count=4,
    )
    with (
        OllamaStandIn(default=text_reply("never sent")) as gpu1,
        OllamaStandIn(default=text_reply("Help is coming. Stay on the roof.")) as gpu2,
    ):
        gpu1.push_chat(tool_reply(dispatch), delayed(30, text_reply("never sent")))
        settings = pool_settings(
            tmp_path, [("gpu1", gpu1, 1), ("gpu2", gpu2, 1)], dispatch={"approval": "auto"}
        )
        async with running_gateway(settings) as gw:
            await all_up(gw)
            gw.sms_in(victim, "4 people on the roof of Char Bhadrasan school, water rising")

            async def second_call_out() -> bool:
                return len(gpu1.requests_to("chat")) == 2

            await wait_for(second_call_out, timeout=20)
            gpu1.stop()  # killed while it generates the reply after the dispatch
            await gw.wait_sent(victim, 2, timeout=30)
            await gw.idle(timeout=30)
            replies = [m["text"] for m in gw.sent_to(victim)]
            dispatches = await gw.rows("SELECT team_id FROM dispatches")
            rows = await gw.rows("SELECT status, attempts FROM inbox WHERE needs_model")
            fallbacks = await gw.rows("SELECT id FROM outbox WHERE idem_key LIKE 'fallback:%'")
            status = await gw.app.status_text(gw.runtime)
    assert len(replies) == 2 and "Help is coming" in replies[1]  # ack + one reply
    assert len(dispatches) == 1 and fallbacks == []
    assert [tuple(r) for r in rows] == [("done", 1)]  # no attempt spent on the dead server
    moved = gpu2.requests_to("chat")[0].body["messages"]
    assert any(m["role"] == "tool" for m in moved)  # it went on with the tool result it had
    assert any(
        "MODEL HOST gpu1" in r.getMessage() and "DOWN" in r.getMessage() for r in caplog.records
    )
    assert "model host gpu1: DOWN" in status and "model host gpu2: up" in status


def _voice_note(path: Path) -> Inbound:
    path.write_bytes(wav_clip(2.0, rate=16000, channels=1))
    att = Attachment("audio", "audio/wav", str(path), path.stat().st_size, path.name)
    return Inbound(
        channel=Channel.MATRIX,
        peer="@stranger:example.org",
        conversation="!dm:example.org",
        text="",
        dedup_key="$voice",
        received_at=time.time(),
        attachments=(att,),
        facts=Facts(is_direct=True),
    )


async def test_a_server_without_audio_never_gets_a_voice_note(tmp_path: Path) -> None:
    no_audio = ("completion", "vision", "tools", "thinking")
    with (
        OllamaStandIn(default=text_reply(REPLY), capabilities=no_audio) as gpu1,
        OllamaStandIn(default=delayed(3, text_reply(REPLY)), capabilities=FULL) as gpu2,
    ):
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 1), ("gpu2", gpu2, 1)])
        (tmp_path / "media").mkdir(exist_ok=True)
        async with running_gateway(settings) as gw:
            await all_up(gw)
            gw.sms_in("+8801711000001", "is the relief camp open today?")
            gw.sms_in("+8801711000002", "is the school shelter open today?")

            async def gpu2_busy() -> bool:
                return len(gpu2.requests_to("chat")) == 1 and len(gpu1.requests_to("chat")) >= 1

            await wait_for(gpu2_busy, timeout=20)
            await gw.runtime.intake.accept([_voice_note(tmp_path / "media" / "voice.wav")])
            await answered(gw, 3, idle=False)  # Matrix is off: its reply stays queued
    assert not any(r.images() for r in gpu1.requests_to("chat"))
    heard = [r for r in gpu2.requests_to("chat") if r.images()]
    assert heard and heard[0].images()[0][:4] == b"RIFF"  # the voice note, as WAV


async def test_the_model_is_loaded_before_the_first_turn(tmp_path: Path) -> None:
    with OllamaStandIn(default=text_reply(REPLY), load_s=6.0) as gpu1:
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 2)])
        async with running_gateway(settings) as gw:
            status = await gw.app.status_text(gw.runtime)
            gw.sms_in("+8801711000001", "water rising, we are on the roof")
            await gw.wait_sent("+8801711000001", 2, timeout=90)
            later = await gw.app.status_text(gw.runtime)
    (load,) = gpu1.load_requests
    assert load.body["keep_alive"] == settings.model.keep_alive and load.body["messages"] == []
    first_turn = gpu1.requests_to("chat")[0]
    assert first_turn.time >= load.time + 6.0 - 0.1  # after the load finished, not during it
    assert "WARMING" in status and "model host gpu1: WARMING (loading gemma4:e4b)" in status
    assert "model host gpu1: up" in later


async def test_a_server_with_another_model_is_refused_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with (
        OllamaStandIn(default=text_reply(REPLY)) as gpu1,
        OllamaStandIn(default=text_reply(REPLY), model="llama3.2:3b") as gpu2,
    ):
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 1), ("gpu2", gpu2, 1)])
        async with running_gateway(settings) as gw:
            for i in range(3):
                gw.sms_in(f"+88017110000{i:02d}", f"is the relief camp {i} open today?")
            for i in range(3):
                await gw.wait_sent(f"+88017110000{i:02d}", 2, timeout=90)
            status = await gw.app.status_text(gw.runtime)
        out = io.StringIO()
        await run_doctor(settings, Console(file=out, width=300))
    assert gpu2.requests_to("chat") == [] and gpu2.load_requests == []
    reason = "model gemma4:e4b is not on this server (it has llama3.2:3b"
    assert f"model host gpu2: REFUSED ({reason}" in status
    assert any(
        "MODEL HOST gpu2" in r.getMessage()
        and "REFUSED" in r.getMessage()
        and reason in r.getMessage()
        for r in caplog.records
    )
    assert "gemma4:e4b on gpu2: skipped, refused: " + reason in out.getvalue()
    assert "gemma4:e4b on gpu1: ready" in out.getvalue()


async def test_a_server_answering_as_another_model_is_refused(tmp_path: Path) -> None:
    """A proxy (or a renamed model) behind the right name: the warm-up's answer gives it away."""
    with (
        OllamaStandIn(default=text_reply(REPLY)) as gpu1,
        OllamaStandIn(default=text_reply(REPLY), answer_as="qwen3:8b") as gpu2,
    ):
        settings = pool_settings(tmp_path, [("gpu1", gpu1, 1), ("gpu2", gpu2, 1)])
        async with running_gateway(settings) as gw:

            async def refused() -> bool:
                return [h.state for h in gw.runtime.llm.statuses()] == ["up", "refused"]

            await wait_for(refused, timeout=20)
            gw.sms_in("+8801711000001", "is the relief camp open today?")
            await gw.wait_sent("+8801711000001", 2, timeout=90)
            status = await gw.app.status_text(gw.runtime)
    assert gpu2.requests_to("chat") == []
    assert "model host gpu2: REFUSED (answers as model qwen3:8b, not gemma4:e4b" in status
