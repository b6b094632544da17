"""MatrixTransport against a real Synapse (tests/harness/synapse_server.py)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    MegolmEvent,
    RoomCreateResponse,
    RoomMessagesResponse,
    RoomPreset,
    RoomSendResponse,
    UploadResponse,
)
from pydantic import SecretStr

from bot.addressing import command_text, strip_reply_fallback
from bot.drill.homeserver import ensure_drill
from bot.models import Channel, Inbound, Outbound, Role
from bot.synapse_local import Account, LocalSynapse
from bot.transports.matrix import (
    MatrixSendError,
    MatrixTransport,
    classify_send_error,
    parse_geo_uri,
)
from config.settings import MatrixSettings, MediaSettings
from tests.harness import synapse_server
from tests.harness.synapse_server import register, sync_once

# fixtures (plain bindings so ruff sees no redefinition when tests name them as parameters)
synapse = synapse_server.synapse
new_user = synapse_server.new_user
user_client = synapse_server.user_client

WAIT_S = 20.0


class Inbox:
    """Stands in for the SQLite inbox: rows + token, committed together (or not at all)."""

    def __init__(self) -> None:
        self.rows: list[Inbound] = []
        self.token: str | None = None
        self.tokens: list[str] = []
        self.fail_next = 0
        self.failures = 0
        self._changed = asyncio.Condition()

    async def load_token(self) -> str | None:
        return self.token

    async def on_batch(self, inbounds: list[Inbound], token: str) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.failures += 1
            raise RuntimeError("simulated database failure")
        async with self._changed:
            self.rows.extend(inbounds)
            self.token = token
            self.tokens.append(token)
            self._changed.notify_all()

    async def wait(self, pred: Callable[[list[Inbound]], bool], timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: pred(self.rows))

    def texts(self) -> list[str]:
        return [r.text for r in self.rows]


class Bot:
    def __init__(
        self,
        hs: LocalSynapse,
        acct: Account,
        tmp: Path,
        *,
        coordinators: set[str] = frozenset(),  # type: ignore[assignment]
        encryption: bool = False,
        max_bytes: int = 1024 * 1024,
        inbox: Inbox | None = None,
        timeline_limit: int = 100,
    ) -> None:
        self.acct = acct
        self.inbox = inbox or Inbox()
        self.settings = MatrixSettings(
            homeserver=hs.url,
            user_id=acct.user_id,
            password=SecretStr(acct.password),
            store_path=tmp / f"store-{acct.user_id[1:9]}",
            encryption=encryption,
            sync_timeout_s=2.0,
        )
        self.media = MediaSettings(dir=tmp / "media", max_bytes=max_bytes)
        self.coordinators = set(coordinators)
        self.timeline_limit = timeline_limit
        self.transport: MatrixTransport | None = None
        self.task: asyncio.Task[None] | None = None

    def role_of(self, user_id: str) -> Role:
        return Role.COORDINATOR if user_id in self.coordinators else Role.PUBLIC

    async def start(self) -> MatrixTransport:
        t = MatrixTransport(
            self.settings,
            self.media,
            load_token=self.inbox.load_token,
            on_batch=self.inbox.on_batch,
            role_of=self.role_of,
            timeline_limit=self.timeline_limit,
        )
        await t.start()
        self.transport = t
        self.task = asyncio.create_task(t.run())
        await wait_until(lambda: t.health.state == "online")
        return t

    async def stop(self) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=15)
            if not done:
                out = io.StringIO()
                for t in asyncio.all_tasks():
                    t.print_stack(file=out)
                pytest.fail(f"transport did not stop on cancel:\n{out.getvalue()}")
            assert task.cancelled(), "run() must end by re-raising CancelledError"


async def wait_until(pred: Callable[[], bool], timeout: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.05)


async def bot(hs: LocalSynapse, tmp: Path, **kw: Any) -> Bot:
    b = Bot(hs, register(hs, "bot"), tmp, **kw)
    await b.start()
    return b


async def room_with_bot(
    user: AsyncClient, b: Bot, *, encrypted: bool = False, direct: bool = False
) -> str:
    initial = (
        [
            {
                "type": "m.room.encryption",
                "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"},
            }
        ]
        if encrypted
        else []
    )
    resp = await user.room_create(
        invite=[b.acct.user_id],
        is_direct=direct,
        initial_state=initial,
        preset=RoomPreset.trusted_private_chat if direct else RoomPreset.private_chat,
    )
    assert isinstance(resp, RoomCreateResponse), resp
    rid: str = resp.room_id
    assert b.transport is not None
    t = b.transport
    await wait_until(lambda: rid in t._require_client().rooms)
    return rid


async def say(user: AsyncClient, room_id: str, body: str, **extra: Any) -> str:
    resp = await user.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": body, **extra}
    )
    assert isinstance(resp, RoomSendResponse), resp
    return str(resp.event_id)


async def upload(user: AsyncClient, data: bytes, mimetype: str, name: str) -> str:
    resp, _ = await user.upload(
        lambda _a, _b: data, content_type=mimetype, filename=name, filesize=len(data)
    )
    assert isinstance(resp, UploadResponse), resp
    return str(resp.content_uri)


async def bot_events(user: AsyncClient, room_id: str, sender: str) -> list[dict[str, Any]]:
    resp = await user.room_messages(room_id, start="", limit=100)
    assert isinstance(resp, RoomMessagesResponse), resp
    return [
        e.source
        for e in resp.chunk
        if getattr(e, "sender", None) == sender and e.source["type"] == "m.room.message"
    ]


# ----------------------------------------------------------------------------- tests


async def test_message_reaches_on_batch_with_fields(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        c = await user_client(coord)
        rid = await room_with_bot(c, b)
        eid = await say(c, rid, "boat needed at Ward 7, 4 people on roof")
        await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows))
        row = next(r for r in b.inbox.rows if r.dedup_key == eid)
        assert row.channel is Channel.MATRIX
        assert row.peer == coord.user_id
        assert row.conversation == rid
        assert row.text == "boat needed at Ward 7, 4 people on roof"
        assert row.meta["event_id"] == eid and row.meta["room_id"] == rid
        assert row.facts.msgtype == "m.text"
        # (the sender's role is intake's, once: tests/test_intake.py)
        assert row.facts.is_direct is True  # two members
        assert abs(row.received_at - time.time()) < 60
        assert b.inbox.token and b.inbox.token == b.inbox.tokens[-1]
        assert all(r.peer != b.acct.user_id for r in b.inbox.rows)  # own events skipped
        # session persisted privately; never logged out (token still valid after close)
        session = b.settings.store_path / "session.json"
        assert oct(os.stat(session).st_mode & 0o777) == "0o600"
        assert json.loads(session.read_text())["user_id"] == b.acct.user_id
    finally:
        await b.stop()


async def test_replies_edits_and_mentions_are_marked(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    """A reply arrives without its quoted fallback (the command or STOP after it is the text)
    and, replying to the bot, as addressed to it; an edit (m.replace) carries its new text and
    edit_of; a pill mention (m.mentions) addresses the bot whatever its text."""
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        c = await user_client(coord)
        rid = await room_with_bot(c, b)
        me = b.acct.user_id
        first = await say(c, rid, "!approve LF-1234")
        reply = await say(
            c,
            rid,
            f"> <{me}> [CRITICAL] LF-1234 DISPATCH REQUEST\n> where: school\n\n!approve LF-1234",
            **{"m.relates_to": {"m.in_reply_to": {"event_id": first}}},
        )
        other = await say(
            c,
            rid,
            f"> <{coord.user_id}> my own note\n\nSTOP",
            **{"m.relates_to": {"m.in_reply_to": {"event_id": first}}},
        )
        edit = await say(
            c,
            rid,
            "* !approve LF-1234 boat-2",
            **{
                "m.new_content": {"msgtype": "m.text", "body": "!approve LF-1234 boat-2"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": first},
            },
        )
        pill = await say(c, rid, "Ops bot: how many cases?", **{"m.mentions": {"user_ids": [me]}})
        wanted = {first, reply, other, edit, pill}
        await b.inbox.wait(lambda rows: wanted <= {r.dedup_key for r in rows})
        rows = {r.dedup_key: r for r in b.inbox.rows}
        assert rows[reply].text == "!approve LF-1234"
        assert rows[reply].facts.in_reply_to == first and rows[reply].facts.addressed
        assert rows[other].text == "STOP" and "addressed" not in rows[other].meta
        assert rows[edit].text == "!approve LF-1234 boat-2"
        assert rows[edit].facts.edit_of == first
        assert rows[pill].facts.addressed and not rows[first].facts.addressed
    finally:
        await b.stop()


def test_command_addressing() -> None:
    """A reply fallback and a leading mention are not part of a command (the parser and the
    route table over them: tests/test_routing.py)."""
    bot_id = "@lifeline:hs"
    fallback = "> <@lifeline:hs> [CRITICAL] LF-1234 DISPATCH REQUEST\n> more\n\n!approve LF-1234"
    for text in (
        fallback,
        "Lifeline: !approve LF-1234",
        "lifeline !approve LF-1234",
        "@lifeline:hs: !approve LF-1234",
        "LIFELINE, !approve LF-1234",
    ):
        assert command_text(text, bot_id) == "!approve LF-1234", text
    assert command_text("lifeline, which cases?", bot_id) == "lifeline, which cases?"
    assert strip_reply_fallback("> not a fallback\n\n!teams") == "> not a fallback\n\n!teams"


async def test_send_notice_idempotent_and_image(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        c = await user_client(coord)
        rid = await room_with_bot(c, b)
        assert b.transport is not None
        out = Outbound(
            channel=Channel.MATRIX,
            peer=coord.user_id,
            conversation=rid,
            text="Case LF-1: team Boat-2 dispatched",
            idem_key="out-42-" + os.urandom(4).hex(),
            meta={"formatted_body": "Case <b>LF-1</b>: team Boat-2 dispatched"},
        )
        first = await b.transport.send(out)
        second = await b.transport.send(out)  # a retry after e.g. a lost response
        assert first == second
        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, "PNG")
        img_id = await b.transport.send_image(
            rid, buf.getvalue(), "map.png", tx_id="img-" + out.idem_key
        )
        evs = await bot_events(c, rid, b.acct.user_id)
        notices = [e for e in evs if e["content"].get("body") == out.text]
        assert len(notices) == 1
        assert notices[0]["content"]["msgtype"] == "m.notice"
        assert notices[0]["content"]["formatted_body"].startswith("Case <b>")
        img = next(e for e in evs if e["event_id"] == img_id)
        assert img["content"]["msgtype"] == "m.image"
        assert img["content"]["info"]["w"] == 8
        dl = await c.download(mxc=img["content"]["url"])
        assert dl.body == buf.getvalue()
        # permanent error: a room the bot is not in
        with pytest.raises(MatrixSendError) as ei:
            await b.transport.send(
                Outbound(Channel.MATRIX, coord.user_id, "!nope:localhost", "x", idem_key="x1")
            )
        assert ei.value.transient is False  # 403 M_FORBIDDEN: not in that room
    finally:
        await b.stop()


async def test_invite_policy(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord, stranger, victim = new_user("coord"), new_user("stranger"), new_user("victim")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        cc, sc, vc = (
            await user_client(coord),
            await user_client(stranger),
            await user_client(victim),
        )
        group = await cc.room_create(invite=[b.acct.user_id], name="ops")
        spam = await sc.room_create(invite=[b.acct.user_id], name="spam group")
        dm = await vc.room_create(
            invite=[b.acct.user_id], is_direct=True, preset=RoomPreset.trusted_private_chat
        )
        assert isinstance(group, RoomCreateResponse) and isinstance(spam, RoomCreateResponse)
        assert isinstance(dm, RoomCreateResponse)
        assert b.transport is not None
        client = b.transport._require_client()
        await wait_until(lambda: group.room_id in client.rooms and dm.room_id in client.rooms)
        t = b.transport
        await wait_until(lambda: not t._rooms.pending_invites)
        assert spam.room_id not in client.rooms

        async def membership(room: str) -> str:
            r = await sc.room_get_state_event(room, "m.room.member", b.acct.user_id)
            return str(r.content.get("membership"))

        assert await membership(spam.room_id) == "leave"
        eid = await say(vc, dm.room_id, "help, water rising")
        await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows))
        row = next(r for r in b.inbox.rows if r.dedup_key == eid)
        assert row.facts.is_direct is True
    finally:
        await b.stop()


async def test_direct_chat_is_decided_by_m_direct_then_membership(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    """The coordination room (configured as a #alias) with 2 members is not a DM; a DM the victim
    opened with is_direct stays one when a relative joins (m.direct first, then membership),
    also after a restart, when the client knows no room state and reads m.direct again."""
    coord, victim, relative = new_user("coord"), new_user("victim"), new_user("relative")
    b = Bot(synapse, register(synapse, "bot"), tmp_path, coordinators={coord.user_id})
    cc, vc, rc = await user_client(coord), await user_client(victim), await user_client(relative)
    local = f"ops{tmp_path.name[-6:]}".lower()
    b.settings = b.settings.model_copy(update={"coordination_room": f"#{local}:localhost"})
    await b.start()
    try:
        ops = await cc.room_create(invite=[b.acct.user_id], alias=local, name="ops")
        dm = await vc.room_create(
            invite=[b.acct.user_id], is_direct=True, preset=RoomPreset.trusted_private_chat
        )
        assert isinstance(ops, RoomCreateResponse) and isinstance(dm, RoomCreateResponse)
        t = b.transport
        assert t is not None
        client = t._require_client()
        await wait_until(lambda: not t._rooms.pending_invites and dm.room_id in client.rooms)
        await vc.room_invite(dm.room_id, relative.user_id)
        await rc.join(dm.room_id)

        async def direct(client: AsyncClient, room: str, body: str) -> bool | None:
            eid = await say(client, room, body)
            await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows))
            return next(r.facts.is_direct for r in b.inbox.rows if r.dedup_key == eid)

        await wait_until(lambda: t._require_client().rooms[ops.room_id].member_count == 2)
        assert await direct(cc, ops.room_id, "boat 2 is back") is False
        await wait_until(lambda: t._require_client().rooms[dm.room_id].member_count == 3)
        assert await direct(vc, dm.room_id, "we are 5 now") is True
        await b.stop()
        await b.start()  # same store and inbox token: resumes, client has no room state
        assert await direct(vc, dm.room_id, "water at the door") is True
        assert await direct(cc, ops.room_id, "ok") is False
    finally:
        await b.stop()


async def test_restart_no_redelivery_and_catch_up_limited(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id}, timeline_limit=5)
    c = await user_client(coord)
    rid = await room_with_bot(c, b)
    first = await say(c, rid, "before restart")
    await b.inbox.wait(lambda rows: any(r.dedup_key == first for r in rows))
    device = b.transport._require_client().device_id  # type: ignore[union-attr]
    await b.stop()
    assert b.transport is not None and b.transport.health.state == "stopped"

    sent = [await say(c, rid, f"missed {i}") for i in range(15)]
    b2 = Bot(
        synapse, b.acct, tmp_path, coordinators={coord.user_id}, inbox=b.inbox, timeline_limit=5
    )
    await b2.start()
    try:
        await b2.inbox.wait(lambda rows: all(any(r.dedup_key == e for r in rows) for e in sent))
        await asyncio.sleep(0.5)
        keys = [r.dedup_key for r in b2.inbox.rows]
        assert keys.count(first) == 1, "old event re-delivered after restart"
        assert all(keys.count(e) == 1 for e in sent)
        assert [r.text for r in b2.inbox.rows if r.dedup_key in sent] == [
            f"missed {i}" for i in range(15)
        ]
        assert b2.transport is not None
        assert b2.transport._require_client().device_id == device  # session restored, no new login
    finally:
        await b2.stop()


async def test_on_batch_failure_does_not_advance_token(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        c = await user_client(coord)
        rid = await room_with_bot(c, b)
        await asyncio.sleep(0.3)
        token_before = b.inbox.token
        b.inbox.fail_next = 2
        eid = await say(c, rid, "commit me")
        await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows), timeout=30)
        assert b.inbox.failures == 2
        assert token_before in b.inbox.tokens  # the failed windows never stored a token
        assert [r.dedup_key for r in b.inbox.rows].count(eid) == 1
        assert b.transport is not None
        await wait_until(lambda: b.transport.health.consecutive_errors == 0)  # type: ignore[union-attr]
        assert b.transport.health.state == "online"
    finally:
        await b.stop()


async def test_synapse_restart_reconnects(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id})
    try:
        c = await user_client(coord)
        rid = await room_with_bot(c, b)
        assert b.transport is not None
        t = b.transport
        synapse.stop()
        await wait_until(lambda: t.health.consecutive_errors >= 1, timeout=30)
        h = t.health
        assert h.state == "reconnecting" and h.last_error
        await asyncio.to_thread(synapse.restart)
        await c.close()  # drop pooled connections to the old process
        eid = await say(c, rid, "after the outage")
        await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows), timeout=90)
        await wait_until(lambda: t.health.state == "online")
        assert t.health.consecutive_errors == 0 and t.health.last_sync_at is not None
    finally:
        await b.stop()


async def test_encrypted_round_trip(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    coord = new_user("coord")
    b = await bot(synapse, tmp_path, coordinators={coord.user_id}, encryption=True)
    try:
        c = await user_client(coord, tmp_path / "user-store")
        await sync_once(c)
        rid = await room_with_bot(c, b, encrypted=True)
        assert b.transport is not None
        t = b.transport
        await wait_until(lambda: t._require_client().rooms[rid].encrypted)
        await sync_once(c)
        async with asyncio.timeout(WAIT_S):  # the user must see the bot joined before sharing keys
            while b.acct.user_id not in c.rooms[rid].users or c.rooms[rid].invited_users:
                await sync_once(c, 500)
        resp = await c.room_send(
            rid,
            "m.room.message",
            {"msgtype": "m.text", "body": "secret: 3 injured"},
            ignore_unverified_devices=True,
        )
        assert isinstance(resp, RoomSendResponse), resp
        eid = resp.event_id
        await b.inbox.wait(lambda rows: any(r.dedup_key == eid for r in rows))
        row = next(r for r in b.inbox.rows if r.dedup_key == eid)
        assert row.text == "secret: 3 injured"
        assert row.meta["encrypted"] is True and not row.facts.undecryptable
        reply_id = await t.send(
            Outbound(Channel.MATRIX, coord.user_id, rid, "received, help coming", idem_key="enc-1")
        )
        raw = await c.room_get_event(rid, reply_id)
        assert raw.event.source["type"] == "m.room.encrypted"  # really encrypted on the wire
        for _ in range(20):
            sr = await sync_once(c, 1000)
            evs = sr.rooms.join.get(rid)
            found = [
                e
                for e in (evs.timeline.events if evs else [])
                if getattr(e, "event_id", "") == reply_id
            ]
            if found:
                assert not isinstance(found[0], MegolmEvent), (
                    "user could not decrypt the bot's reply"
                )
                assert found[0].body == "received, help coming"
                break
        else:
            pytest.fail("user never saw the encrypted reply")
    finally:
        await b.stop()


def _ogg_opus() -> bytes:
    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(48000 // 2) / 10) * 8000).astype("int16").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


async def test_image_voice_oversize_location(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    from PIL import Image

    victim = new_user("victim")
    b = await bot(synapse, tmp_path, max_bytes=50_000)
    try:
        c = await user_client(victim)
        rid = await room_with_bot(c, b, direct=True)
        png = io.BytesIO()
        Image.new("RGB", (32, 32), (0, 90, 200)).save(png, "PNG")
        png_b = png.getvalue()
        ogg = _ogg_opus()
        assert ogg.startswith(b"OggS")
        big = os.urandom(120_000)
        img_url = await upload(c, png_b, "image/png", "roof.png")
        ogg_url = await upload(c, ogg, "audio/ogg", "voice.ogg")
        big_url = await upload(c, big, "application/octet-stream", "big.bin")

        async def send(content: dict[str, Any]) -> str:
            r = await c.room_send(rid, "m.room.message", content)
            assert isinstance(r, RoomSendResponse), r
            return str(r.event_id)

        e_img = await send(
            {
                "msgtype": "m.image",
                "body": "roof.png",
                "url": img_url,
                "info": {"mimetype": "image/png", "size": len(png_b)},
            }
        )
        e_voice = await send(
            {
                "msgtype": "m.audio",
                "body": "Voice message",
                "url": ogg_url,
                "info": {"mimetype": "audio/ogg", "size": len(ogg), "duration": 500},
                "org.matrix.msc1767.audio": {"duration": 500},
                "org.matrix.msc3245.voice": {},
            }
        )
        e_big = await send(
            {"msgtype": "m.file", "body": "big.bin", "url": big_url, "info": {"size": len(big)}}
        )
        e_liar = await send(
            {"msgtype": "m.file", "body": "liar.bin", "url": big_url, "info": {"size": 10}}
        )
        e_loc = await send(
            {"msgtype": "m.location", "body": "I am here", "geo_uri": "geo:23.8103,90.4125;u=35"}
        )
        e_missing = await send(
            {"msgtype": "m.image", "body": "gone.png", "url": "mxc://localhost/doesnotexist"}
        )
        ids = [e_img, e_voice, e_big, e_liar, e_loc, e_missing]
        await b.inbox.wait(lambda rows: all(any(r.dedup_key == e for r in rows) for e in ids))
        rows = {r.dedup_key: r for r in b.inbox.rows}

        img = rows[e_img]
        assert len(img.attachments) == 1 and img.attachments[0].kind == "image"
        assert Path(img.attachments[0].path).read_bytes() == png_b
        assert img.attachments[0].mimetype == "image/png" and img.attachments[0].size == len(png_b)
        assert Path(img.attachments[0].path).is_relative_to(b.media.dir)

        voice = rows[e_voice]
        assert voice.attachments[0].kind == "audio" and voice.facts.voice is True
        assert voice.attachments[0].mimetype == "audio/ogg"
        assert Path(voice.attachments[0].path).read_bytes() == ogg

        for key in (e_big, e_liar):
            row = rows[key]
            assert row.attachments == () and row.facts.media_error == "too_large"
        import hashlib

        for key in (e_big, e_liar):
            d = b.media.dir / hashlib.sha256(key.encode()).hexdigest()
            assert not d.exists() or not any(d.iterdir()), "oversize bytes were written"
        assert rows[e_liar].meta["media_name"] == "liar.bin"

        loc = rows[e_loc]
        assert loc.facts.lat == pytest.approx(23.8103) and loc.facts.lon == pytest.approx(90.4125)
        assert loc.meta["accuracy_m"] == 35 and loc.text == "I am here"

        missing = rows[e_missing]
        assert missing.facts.media_error == "download_failed" and missing.attachments == ()
    finally:
        await b.stop()


async def test_dm_room_for_finds_or_creates(
    synapse: LocalSynapse, new_user: Callable[[str], Account], user_client: Any, tmp_path: Path
) -> None:
    victim = new_user("victim")
    b = await bot(synapse, tmp_path)
    try:
        assert b.transport is not None
        rid = await b.transport.dm_room_for(victim.user_id)
        again = await b.transport.dm_room_for(victim.user_id)
        assert rid == again
        assert await b.transport.resolve_room(rid) == rid
        with pytest.raises(MatrixSendError) as ei:
            await b.transport.resolve_room("#no-such-alias:localhost")
        assert ei.value.transient is False
        await b.transport.send(
            Outbound(
                Channel.MATRIX, victim.user_id, rid, "Your case LF-9 is assigned", idem_key="dm-1"
            )
        )
        vc = await user_client(victim)
        sr = await sync_once(vc)
        assert rid in sr.rooms.invite
    finally:
        await b.stop()


def test_pure_helpers() -> None:
    assert parse_geo_uri("geo:-33.5,151.2,20;u=10") == {
        "lat": -33.5,
        "lon": 151.2,
        "accuracy_m": 10.0,
    }
    assert parse_geo_uri("geo:91,0") is None and parse_geo_uri("nope") is None

    class R:
        def __init__(self, code: str, status: int, retry: int | None = None) -> None:
            self.status_code, self.retry_after_ms = code, retry
            self.transport_response = type("T", (), {"status": status})()

    e = classify_send_error(R("M_LIMIT_EXCEEDED", 429, 1500))
    assert e.transient and e.retry_after_s == 1.5
    assert classify_send_error(R("M_UNKNOWN", 502)).transient
    assert not classify_send_error(R("M_FORBIDDEN", 403)).transient
    assert not classify_send_error(R("M_NOT_FOUND", 404)).transient


async def test_drill_is_idempotent(tmp_path: Path) -> None:
    a = await ensure_drill(tmp_path / "drill")
    try:
        b = await ensure_drill(tmp_path / "drill")
        assert a == b
        assert a.room_alias == "#coordination:localhost" and a.room_id.startswith("!")
        assert a.bot_user_id == "@lifeline:localhost"
        t = Bot(a.server, register(a.server, "bot"), tmp_path)
        await t.start()
        try:
            assert t.transport is not None
            assert await t.transport.resolve_room(a.room_alias) == a.room_id
        finally:
            await t.stop()
        state = tmp_path / "drill" / "drill.json"
        assert oct(os.stat(state).st_mode & 0o777) == "0o600"
        assert json.loads(state.read_text())["bot_password"] == a.bot_password
    finally:
        a.server.stop()
