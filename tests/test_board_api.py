"""The incident board's server against a real gateway and a real Synapse: login with the Matrix
account (staff only), the live stream, actions through the !command handlers closing the loop
to the victim's SMS and the coordination room, masking, CSRF and the security headers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.board import events as events_module
from tests.harness.board_client import (
    board_gateway,
    event_stream,
    http,
    logged_in,
    login_status,
)
from tests.harness.gateway import Gateway
from tests.harness.matrix_room import Room, joined, roof_rescue_turn
from tests.harness.ollama_standin import OllamaStandIn
from tests.harness.synapse_server import register

VICTIM = "+8801712345621"


async def roof_case(gw: Gateway, standin: OllamaStandIn) -> str:
    """The victim's SMS has made a case waiting for approval."""
    standin.push_chat(*roof_rescue_turn())
    gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
    await gw.wait_sent(VICTIM, 2)
    code: str = (await gw.rows("SELECT case_code FROM incidents"))[0][0]
    return code


async def test_coordinator_sees_a_new_sms_case_live_and_approves_it_on_the_board(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(*roof_rescue_turn())
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        await joined(gw, room.room_id)
        await gw.protocols_ready()  # the model turn is given passages, and the page shows them
        async with (
            logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord,
            event_stream(coord) as events,
        ):
            assert coord.role == "coordinator"
            assert events.retry == "3000"
            gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
            live = await events.wait(
                "case", lambda c: c["dispatch"] and c["dispatch"]["status"] == "pending_approval"
            )
            case = live["code"]
            assert live["peer"] == VICTIM  # coordinators see the whole number
            assert live["priority"] == "critical" and live["channel"] == "sms"
            status, listed = await coord.get("/api/cases?filter=unassigned")
            assert status == 200 and [c["code"] for c in listed["cases"]] == [case]

            status, before = await coord.get(f"/api/cases/{case}")
            assert before["team_kind"] == "boat"  # free boats first, then the others
            assert before["team_choice"] == ["boat-1", "boat-2", "med-1"]
            status, answer = await coord.post(f"/api/cases/{case}/approve", {"team": "boat-2"})
            assert status == 200, answer
            assert answer["ok"] and f"{case}: approved, team boat-2" in answer["message"]
            await events.wait("case", lambda c: c["code"] == case and c["team"] == "boat-2")
            await events.wait("team", lambda t: t["id"] == "boat-2" and t["status"] == "busy")

            # the case page tells the whole story, the AI audit trail included
            status, page = await coord.get(f"/api/cases/{case}")
            assert status == 200 and page["case"]["team"] == "boat-2"
            timeline = page["timeline"]
            assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
            kinds = {e["kind"] for e in timeline}
            assert kinds >= {"in", "out", "model_turn", "dispatch", "audit"}, kinds
            (turn,) = [e for e in timeline if e["kind"] == "model_turn"]
            assert turn["ok"] and turn["passages"] and all(p["title"] for p in turn["passages"])
            (call,) = turn["tool_calls"]
            assert call["name"] == "dispatch_rescue_team" and call["decision"] == "done"
            assert call["arguments"]["location"] == "Char Bhadrasan school roof"
            assert turn["reply"] == "Your rescue request is recorded. Stay on the roof."
            actions = [(e["actor"], e["action"]) for e in timeline if e["kind"] == "audit"]
            assert (room.coordinator.user_id, "dispatch.assigned") in actions
            assert any(e["kind"] == "in" and e["parts"] == 1 for e in timeline)

        sms = await gw.wait_sent(VICTIM, 3)
        assert "rescue approved" in sms[2]["text"] and "boat-2" in sms[2]["text"]
        notice = await room.wait_notice("via the board")
        assert notice.startswith(f"{case}: approved, team boat-2")
        assert notice.endswith(f"by {room.coordinator.user_id} via the board")
        d = await gw.rows("SELECT status, team_id, decided_by FROM dispatches")
        assert tuple(d[0]) == ("assigned", "boat-2", room.coordinator.user_id)
        audit = await gw.rows("SELECT actor FROM audit WHERE action='dispatch.assigned'")
        assert [r[0] for r in audit] == [room.coordinator.user_id]


async def test_responder_sees_masked_numbers_and_cannot_approve(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        case = await roof_case(gw, ollama_standin)
        async with logged_in(base, room.responder.user_id, room.responder.password) as resp:
            assert resp.role == "responder"
            status, listed = await resp.get("/api/cases")
            assert status == 200
            (shown,) = listed["cases"]
            assert shown["code"] == case and shown["peer"] != VICTIM
            assert shown["peer"].endswith(VICTIM[-3:]) and "*" in shown["peer"]
            status, page = await resp.get(f"/api/cases/{case}")
            assert status == 200 and VICTIM not in json.dumps(page)
            status, me = await resp.get("/api/me")
            assert "approve" not in me["actions"] and "arrived" in me["actions"]

            status, answer = await resp.post(f"/api/cases/{case}/approve", {"team": "boat-1"})
            assert status == 403, answer
            assert "Only coordinators" in answer["error"]
        assert (await gw.rows("SELECT status FROM dispatches"))[0][0] == "pending_approval"
        denied = await gw.rows("SELECT actor FROM audit WHERE action='authority.denied'")
        assert [r[0] for r in denied] == [room.responder.user_id]
        assert len(gw.sent_to(VICTIM)) == 2  # the victim heard nothing of the refused try


async def test_only_staff_log_in_and_nothing_but_the_login_page_is_anonymous(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    stranger = register(room.hs, "stranger")
    async with board_gateway(tmp_path, ollama_standin, room) as (_, base):
        async with http() as anon:
            for path in ("/api/me", "/api/cases", "/api/teams", "/api/events", "/media/1-0"):
                async with anon.get(base + path, allow_redirects=False) as r:
                    assert r.status == 401, path
            async with anon.get(base + "/", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/login")
            async with anon.get(base + "/login") as r:
                assert r.status == 200 and "text/html" in r.content_type

            # a real Matrix account that is not staff
            got = await login_status(anon, base, user=stranger.user_id, password=stranger.password)
            assert got == (303, "/login?error=not_staff")
            # staff with the wrong password
            got = await login_status(
                anon, base, user=room.coordinator.user_id, password="wrong-password"
            )
            assert got == (303, "/login?error=denied")
            assert not anon.cookie_jar.filter_cookies(base)  # no session cookie was given
            async with anon.get(base + "/api/me") as r:
                assert r.status == 401

        # an access token checked with /whoami works as well as a password
        async with http() as client:
            got = await login_status(client, base, token=room.responder.access_token)
            assert got == (303, "/")
            async with client.get(base + "/api/me") as r:
                assert (await r.json())["user"] == room.responder.user_id


async def test_login_failures_are_limited_per_user(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    async with (
        board_gateway(tmp_path, ollama_standin, room, login_failures=3) as (_, base),
        http() as client,
    ):
        for _ in range(3):
            got = await login_status(client, base, user=room.coordinator.user_id, password="guess")
            assert got == (303, "/login?error=denied")
        # now even the right password is refused for a while: a guesser learns nothing
        got = await login_status(
            client, base, user=room.coordinator.user_id, password=room.coordinator.password
        )
        assert got == (303, "/login?error=too_many")


async def test_csrf_token_required_and_security_headers_everywhere(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        case = await roof_case(gw, ollama_standin)
        async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
            for token in ("", "not-the-token"):
                status, answer = await coord.post(
                    f"/api/cases/{case}/approve", {"team": "boat-1"}, csrf=token
                )
                assert status == 403 and "CSRF" in answer["error"], (token, answer)
            assert (await gw.rows("SELECT status FROM dispatches"))[0][0] == "pending_approval"
            # another site's form post is refused even with a token
            async with coord.client.post(
                f"{base}/api/cases/{case}/approve",
                json={},
                headers={"X-CSRF-Token": coord.csrf, "Origin": "http://evil.example"},
            ) as r:
                assert r.status == 403

            for path in ("/login", "/", "/api/me", "/api/cases", "/vendor/leaflet/leaflet.js"):
                async with coord.client.get(base + path, allow_redirects=False) as r:
                    assert r.status == 200, path
                    csp = r.headers["Content-Security-Policy"]
                    assert "default-src 'self'" in csp and "script-src 'self'" in csp, path
                    assert "unsafe-inline" not in csp
                    assert r.headers["X-Content-Type-Options"] == "nosniff", path
                    assert r.headers["Referrer-Policy"] == "same-origin", path

            # logout needs the token too; then the session is gone
            async with coord.client.post(f"{base}/logout", allow_redirects=False) as r:
                assert r.status == 403
            async with coord.client.post(
                f"{base}/logout", data={"csrf": coord.csrf}, allow_redirects=False
            ) as r:
                assert (r.status, r.headers["Location"]) == (303, "/login")
            status, _ = await coord.get("/api/me")
            assert status == 401


async def test_victim_text_comes_back_json_escaped_and_the_stream_pings(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events_module, "PING_S", 0.5)  # 15 s in service
    room = coordination
    payload = '<script>alert(1)</script><img src=x onerror="alert(2)"> & roof'
    async with board_gateway(tmp_path, ollama_standin, room) as (gw, base):
        gw.sms_in(VICTIM, payload)
        await gw.wait_sent(VICTIM, 1)
        case = (await gw.rows("SELECT case_code FROM incidents"))[0][0]
        async with logged_in(base, room.coordinator.user_id, room.coordinator.password) as coord:
            for path in ("/api/cases", f"/api/cases/{case}"):
                async with coord.client.get(base + path) as r:
                    raw = await r.text()
                    assert r.content_type == "application/json"
                assert "<script" not in raw and "<img" not in raw and "\\u003cscript" in raw
            status, page = await coord.get(f"/api/cases/{case}")
            assert status == 200 and page["case"]["summary"] == payload
            inbound = [e for e in page["timeline"] if e["kind"] == "in"]
            assert [e["text"] for e in inbound] == [payload]
            assert any(e["kind"] == "out" and e["to"] == "reporter" for e in page["timeline"])
            async with event_stream(coord) as live:
                await live.wait("ping")
