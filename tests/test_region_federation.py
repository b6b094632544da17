"""The region over real federation: two Synapse homeservers on 127.0.0.1 (tests/harness/
federation.py), one Lifeline gateway per homeserver, the regional room on A joined over
federation by B. What B's homeserver holds is read with a plain client, paging /messages back
(which makes Synapse backfill anything it missed while it was down)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.region import events
from bot.synapse_local import Account
from tests.harness.federation import (
    FederatedSynapse,
    create_regional_room,
    federation,
    join,
    region_events,
)
from tests.harness.gateway import Gateway, make_settings, running_gateway, wait_for
from tests.harness.matrix_room import Room, joined
from tests.harness.ollama_standin import OllamaStandIn, text_reply
from tests.harness.process import GatewayProcess, wait_until, write_config
from tests.harness.synapse_server import make_client

VICTIM_TEXT = "Water rising fast, 6 people on the roof at Ulipur ghat, my mother is sick. Help!"
PRIVATE = ("mother", "sick", "Water rising")


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[FederatedSynapse]]:
    with federation(tmp_path_factory.mktemp("fed"), 2) as servers:
        yield servers


@dataclass
class Region:
    a: FederatedSynapse
    b: FederatedSynapse
    bot_a: Account
    bot_b: Account
    watch_a: Account  # plain clients that read the room on each homeserver
    watch_b: Account
    room_id: str
    alias: str

    def seen(self, hs: FederatedSynapse) -> list[dict[str, Any]]:
        watcher = self.watch_a if hs is self.a else self.watch_b
        return region_events(hs, watcher.access_token, self.room_id, events.FIELD)

    async def seen_async(self, hs: FederatedSynapse) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.seen, hs)


def _user(hs: FederatedSynapse, prefix: str) -> Account:
    return hs.register(f"{prefix}{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex[:8])


@pytest.fixture
def region(fed: list[FederatedSynapse]) -> Region:
    a, b = fed
    eoc = _user(a, "eoc")
    room_id, alias = create_regional_room(a, eoc, alias=f"region{uuid.uuid4().hex[:6]}")
    watch_a, watch_b = _user(a, "watch"), _user(b, "watch")
    join(a, watch_a, alias)
    join(b, watch_b, alias)  # over federation: B's homeserver now has the room
    return Region(a, b, _user(a, "bot"), _user(b, "bot"), watch_a, watch_b, room_id, alias)


def gateway_config(
    tmp: Path, hs: FederatedSynapse, bot: Account, district: str, region: Region, peer: Account
) -> dict[str, Any]:
    other = "LAL" if district == "BHO" else "BHO"
    return {
        "matrix": {
            "enabled": True,
            "homeserver": hs.url,
            "user_id": bot.user_id,
            "password": bot.password,
            "store_path": str(tmp / "matrix-store"),
            "encryption": False,
            "sync_timeout_s": 2,
        },
        "region": {"district": district, "room": region.alias, "peers": {other: peer.user_id}},
        "broadcasts": {"sitrep_every_min": 0},
    }


def settings_for(tmp: Path, standin: OllamaStandIn, region: Region, district: str) -> Any:
    hs, bot, peer = (
        (region.a, region.bot_a, region.bot_b)
        if district == "BHO"
        else (region.b, region.bot_b, region.bot_a)
    )
    tmp.mkdir(parents=True, exist_ok=True)
    return make_settings(tmp, standin.url, **gateway_config(tmp, hs, bot, district, region, peer))


def of(seen: list[dict[str, Any]], district: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [e for e in seen if e["district"] == district and kind in (None, e["kind"])]


def assert_public(seen: list[dict[str, Any]], *numbers: str) -> None:
    flat = json.dumps(seen)
    digits = "".join(c for c in flat if c.isdigit())
    for number in numbers:
        assert number.lstrip("+")[-7:] not in digits, number
    for words in PRIVATE:
        assert words not in flat, words


def assert_one_each(seen: list[dict[str, Any]], district: str, upto: int) -> None:
    """Every seq 1..upto of the district exactly once."""
    counts = Counter(e["seq"] for e in of(seen, district))
    assert set(counts) >= set(range(1, upto + 1)), sorted(counts)
    assert all(n == 1 for n in counts.values()), counts


def seen_seqs(seen: list[dict[str, Any]]) -> dict[str, list[int]]:
    return {d: [e["seq"] for e in of(seen, d)] for d in ("BHO", "LAL")}


async def recorded(gw: Gateway, district: str) -> int:
    rows = await gw.rows("SELECT COALESCE(MAX(seq), 0) FROM region_log WHERE district=?", district)
    return int(rows[0][0])


async def test_a_critical_sms_at_a_is_one_case_event_on_b(
    tmp_path: Path, ollama_standin: OllamaStandIn, region: Region
) -> None:
    ollama_standin.push_chat(text_reply("Help is coming. Stay on the roof."))
    sa = settings_for(tmp_path / "a", ollama_standin, region, "BHO")
    sb = settings_for(tmp_path / "b", ollama_standin, region, "LAL")
    victim = "+8801712345678"
    async with running_gateway(sa) as ga, running_gateway(sb):
        ga.sms_in(victim, VICTIM_TEXT + " call 01812345678")
        ack = (await ga.wait_sent(victim))[0]["text"]
        code = ack.split("Case ")[1].split(".")[0]
        assert code.startswith("BHO-")

        async def on_b() -> list[dict[str, Any]] | None:
            seen = await region.seen_async(region.b)
            cases = [e for e in of(seen, "BHO", "case") if e["data"]["code"] == code]
            # B's gateway publishes too: its team list first, then its hello, one send at a time
            return seen if cases and of(seen, "LAL", "hello") else None

        seen = await wait_for(on_b, timeout=60, every=0.5)
        await ga.idle()
        seen = await region.seen_async(region.b)
    cases = [e for e in of(seen, "BHO", "case") if e["data"]["code"] == code]
    assert len(cases) == 1
    assert cases[0]["sender"] == region.bot_a.user_id
    assert cases[0]["data"]["priority"] == "critical"
    seqs = [e["seq"] for e in of(seen, "BHO")]
    assert seqs == sorted(set(seqs)), seqs  # increasing, no duplicate
    assert_public(seen, victim, "01812345678")


async def test_federation_cut_a_keeps_serving_and_both_sides_converge(
    tmp_path: Path, ollama_standin: OllamaStandIn, region: Region
) -> None:
    for _ in range(8):
        ollama_standin.push_chat(text_reply("Help is coming. Stay where you are."))
    sa = settings_for(tmp_path / "a", ollama_standin, region, "BHO")
    sb = settings_for(tmp_path / "b", ollama_standin, region, "LAL")
    async with running_gateway(sa) as ga, running_gateway(sb) as gb:

        async def both_hello() -> bool:
            seen = await region.seen_async(region.b)
            return bool(of(seen, "BHO", "hello") and of(seen, "LAL", "hello"))

        await wait_for(both_hello, timeout=90, every=0.5)

        await asyncio.to_thread(region.b.stop)  # the link (and B's homeserver) is gone
        victims = [f"+88017000001{i}" for i in range(4)]
        for v in victims:
            ga.sms_in(v, VICTIM_TEXT)
        gb.sms_in("+88019000002", VICTIM_TEXT)
        for v in victims:  # A keeps serving its victims
            assert "BHO-" in (await ga.wait_sent(v, timeout=30))[0]["text"]
        assert "LAL-" in (await gb.wait_sent("+88019000002", timeout=30))[0]["text"]

        async def a_recorded() -> bool:
            rows = await ga.rows("SELECT COUNT(*) FROM region_log WHERE kind='case'")
            return int(rows[0][0]) == len(victims)

        await wait_for(a_recorded, timeout=30)  # and keeps recording

        await asyncio.to_thread(region.b.start, 120)
        ga.sms_in("+880170000099", VICTIM_TEXT)  # life goes on after the link is back

        state: dict[str, Any] = {}

        async def converged() -> bool:
            seen_a, seen_b = await region.seen_async(region.a), await region.seen_async(region.b)
            want = {"BHO": await recorded(ga, "BHO"), "LAL": await recorded(gb, "LAL")}
            state.update(want=want, a=seen_seqs(seen_a), b=seen_seqs(seen_b))
            for seen in (seen_a, seen_b):
                for district, upto in want.items():
                    seqs = sorted(e["seq"] for e in of(seen, district))
                    if seqs[:upto] != list(range(1, upto + 1)):
                        return False
            return True

        try:
            await wait_for(converged, timeout=120, every=1.0)
        except AssertionError:
            raise AssertionError(f"no convergence: {state}") from None
        seen_a, seen_b = await region.seen_async(region.a), await region.seen_async(region.b)
    for seen in (seen_a, seen_b):
        assert_one_each(seen, "BHO", 6)
        assert_one_each(seen, "LAL", 2)
        assert len(of(seen, "BHO", "case")) == 5
        assert_public(seen, *victims, "+88019000002")
    key = [(e["district"], e["seq"]) for e in seen_b]
    assert sorted(key) == sorted((e["district"], e["seq"]) for e in seen_a)


def test_kill_9_of_the_publisher_sends_nothing_twice(
    tmp_path: Path, standin: OllamaStandIn, region: Region
) -> None:
    """The gateway dies (kill -9) after the homeserver took an event but before its outbox row
    was marked sent: the restarted gateway sends it again with the same txn id, and the
    homeserver answers with the same event: one event per seq."""
    for _ in range(4):
        standin.push_chat(text_reply("Help is coming."))
    overrides = gateway_config(tmp_path, region.a, region.bot_a, "BHO", region, region.bot_b)
    gw = GatewayProcess(write_config(tmp_path, standin.url, **overrides))
    gw.start()
    try:
        gw.sms_in("+8801711111111", VICTIM_TEXT)

        def case_sent() -> list[tuple[Any, ...]]:
            return gw.query(
                "SELECT id, idem_key, ref FROM outbox WHERE idem_key LIKE 'lifeline-region-%' "
                "AND status='sent' AND text LIKE '%new CRITICAL case%'"
            )

        sent = wait_until(case_sent, timeout=60)
        gw.kill9()
        row_id, idem_key, event_id = sent[0]
        with sqlite3.connect(gw.db_path) as conn:  # as if it died before recording the send
            conn.execute("UPDATE outbox SET status='queued', ref=NULL WHERE id=?", (row_id,))
        gw.start()
        resent = wait_until(
            lambda: gw.query("SELECT ref FROM outbox WHERE id=? AND status='sent'", row_id),
            timeout=60,
        )
        assert resent[0][0] == event_id  # the homeserver recognised the txn id
        gw.sms_in("+8801722222222", VICTIM_TEXT)
        wait_until(lambda: len(gw.query("SELECT 1 FROM region_log WHERE kind='case'")) == 2, 30)
        upto = gw.query("SELECT MAX(seq) FROM region_log")[0][0]
        wait_until(
            lambda: (
                not gw.query(  # every entry handed over, and every handed-over one sent
                    "SELECT 1 FROM region_log WHERE enqueued_at IS NULL UNION ALL "
                    "SELECT 1 FROM outbox WHERE idem_key LIKE 'lifeline-region-%' "
                    "AND status!='sent'"
                )
            ),
            timeout=60,
        )
    finally:
        gw.stop_quietly()
    seen = wait_until(lambda: region.seen(region.b) or None, timeout=30)
    wait_until(lambda: len(of(region.seen(region.b), "BHO")) >= upto, timeout=60)
    seen = region.seen(region.b)
    assert_one_each(seen, "BHO", upto)
    assert sum(1 for e in of(seen, "BHO") if e["seq"] == int(idem_key.rsplit("-", 1)[1])) == 1


async def test_a_critical_sms_at_a_appears_in_bs_region_within_seconds(
    tmp_path: Path, ollama_standin: OllamaStandIn, region: Region
) -> None:
    """End to end over federation: SMS at BHO (homeserver A) → `!region` in LAL's coordination
    room (homeserver B) shows BHO's open critical case."""
    ollama_standin.push_chat(text_reply("Help is coming. Stay on the roof."))
    b = region.b
    coordinator, responder = _user(b, "coord"), _user(b, "resp")
    coord, resp = await make_client(b, coordinator), await make_client(b, responder)
    try:
        created = await coord.room_create(name="coordination", invite=[region.bot_b.user_id])
        room = Room(b, region.bot_b, coordinator, responder, coord, resp, created.room_id)
        sa = settings_for(tmp_path / "a", ollama_standin, region, "BHO")
        sb = settings_for(tmp_path / "b", ollama_standin, region, "LAL")
        matrix_b = sb.matrix.model_copy(
            update={"coordination_room": room.room_id, "coordinators": [coordinator.user_id]}
        )
        sb = sb.model_copy(update={"matrix": matrix_b})
        async with running_gateway(sa) as ga, running_gateway(sb) as gb:
            await joined(gb, room.room_id)
            ga.sms_in("+8801733333333", VICTIM_TEXT)
            code = (await ga.wait_sent("+8801733333333"))[0]["text"].split("Case ")[1].split(".")[0]

            async def in_lal_view() -> bool:
                return bool(await gb.rows("SELECT 1 FROM region_cases WHERE code=?", code))

            await wait_for(in_lal_view, timeout=60, every=0.3)
            await room.say(coord, "!region")
            report = await room.wait_notice("BHO:", timeout=30)
        line = next(x for x in report.splitlines() if x.startswith("BHO:"))
        assert "open 1 (1 critical)" in line, report
        assert "+8801733333333" not in report and "mother" not in report
    finally:
        await coord.close()
        await resp.close()
