"""The incident board in a real browser (Debian's headless Chromium driven by Playwright) against
a whole gateway: real Synapse, the libGammu dummy modem, the Ollama stand-in.

A coordinator logs in, sees a new SMS case arrive live, approves it, and the victim's phone and
the coordination room hear it; a responder gets no approve button and the API refuses them; a
non-staff account cannot log in; a victim's markup stays text; the page never leaves its origin;
the page says when the live connection is lost and when it is back.

Set LIFELINE_BOARD_SHOTS=docs to refresh the README's screenshots (docs/board*.png)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.store import incidents
from bot.synapse_local import Account
from tests.harness.board_client import board_settings, board_up
from tests.harness.browser import Tab, chromium, new_tab
from tests.harness.gateway import Gateway, running_gateway, wait_for
from tests.harness.matrix_room import Room, joined, roof_rescue_turn
from tests.harness.ollama_standin import OllamaStandIn, text_reply

pytestmark = pytest.mark.timeout(240)

VICTIM = "+8801712345678"
XSS = '<img src=x onerror="window.__pwned=1;alert(1)"><script>alert(2)</script><b id=injected>b</b>'


def shots_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("LIFELINE_BOARD_SHOTS") or tmp_path)


async def first_case(gw: Gateway) -> str:
    async def check() -> str | None:
        rows = await gw.rows("SELECT case_code FROM incidents ORDER BY id")
        return rows[0][0] if rows else None

    code: str = await wait_for(check, 30)
    return code


async def place_at(gw: Gateway, code: str, lat: float, lon: float) -> None:
    """A GPS fix for a case (as a photo's EXIF would give): the map shows it as exact."""
    async with gw.db.transaction() as conn:
        incident = await incidents.by_case_in(conn, code)
        assert incident is not None
        await incidents.update(conn, incident.id, time.time(), lat=lat, lon=lon)


async def open_case(tab: Tab, code: str) -> None:
    await tab.page.click(f'li.case[data-code="{code}"] button.case-open')
    await tab.page.wait_for_selector(".timeline")


async def test_coordinator_sees_a_new_sms_case_live_and_approves_it_on_the_board(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(*roof_rescue_turn())
    async with (
        running_gateway(board_settings(tmp_path, ollama_standin, room)) as gw,
        chromium() as browser,
    ):
        base = await board_up(gw) + "/"
        await joined(gw, room.room_id)
        tab = await new_tab(browser, base, width=1440, height=900)
        await tab.open_board(room.coordinator.user_id, room.coordinator.password)
        assert await tab.page.text_content("#me-role") == "coordinator"
        assert await tab.page.inner_text("#me-user") == room.coordinator.user_id
        await tab.page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
        row = tab.page.locator("li.case").first
        await row.wait_for(timeout=30_000)
        code = await first_case(gw)
        assert await row.get_attribute("data-code") == code
        assert await tab.page.evaluate("window.__sameDocument") is True
        # The model's dispatch request follows: the same row updates live.
        await tab.page.locator(
            f'li.case[data-code="{code}"] .loc.approx', has_text="Char Bhadrasan school roof"
        ).wait_for(timeout=30_000)
        assert "CRITICAL" in await row.inner_text()
        await gw.wait_sent(VICTIM, 2)

        # A GPS fix arrives: the case's pin appears on the map, drawn as exact.
        await place_at(gw, code, 23.812, 90.412)
        await tab.page.wait_for_selector(f'li.case[data-code="{code}"] .loc.exact')
        await tab.page.wait_for_selector(".pin.exact.p-critical")

        await open_case(tab, code)
        story = await tab.page.inner_text(".timeline")
        assert "Water rising" in story and "Stay on the roof" in story
        assert await tab.page.locator(".entry.k-model_turn").count() >= 1
        turn_story = story
        choices = await tab.page.locator("form.a-approve option").all_inner_texts()
        # Free boats first for a case that needs a boat (after "first free team").
        assert choices[1].startswith("boat-1"), choices
        await tab.page.set_viewport_size({"width": 1440, "height": 2300})  # the whole story
        await tab.page.screenshot(path=str(shots_dir(tmp_path) / "board-case.png"))
        await tab.page.set_viewport_size({"width": 1440, "height": 900})
        await tab.page.select_option("form.a-approve select", "boat-2")
        await tab.page.click("form.a-approve button")
        result = tab.page.locator(".action-result.ok")
        await result.wait_for(timeout=30_000)

        sms = await gw.wait_sent(VICTIM, 3)
        assert "rescue approved" in sms[2]["text"] and "boat-2" in sms[2]["text"]
        notice = await room.wait_notice(f"{code}: approved, team boat-2")
        assert "board" in notice
        d = await gw.rows("SELECT status, team_id, decided_by FROM dispatches")
        assert tuple(d[0]) == ("assigned", "boat-2", room.coordinator.user_id)
        # The list follows live: the case now shows its team, the teams panel the busy boat.
        await tab.page.wait_for_selector(f'li.case[data-code="{code}"] .c-team >> text=boat-2')
        await tab.page.wait_for_selector('li.team[data-team="boat-2"].t-busy')

        # The AI audit trail: the model's tool call and what the backend decided.
        assert "dispatch_rescue_team" in turn_story, turn_story
        await tab.page.click("#case-close")
        await tab.page.screenshot(path=str(shots_dir(tmp_path) / "board.png"))
        assert tab.dialogs == [] and tab.errors == []
        # Every request the page made stayed on its own origin (Leaflet included).
        assert any("/vendor/leaflet/leaflet.js" in u for u in tab.requests), tab.requests
        assert any(u.endswith("/api/events") for u in tab.requests), tab.requests
        assert await tab.outside_origin() == []


async def test_responder_cannot_approve_and_non_staff_cannot_log_in(
    tmp_path: Path,
    ollama_standin: OllamaStandIn,
    coordination: Room,
    new_user: Callable[[str], Account],
) -> None:
    room = coordination
    ollama_standin.push_chat(*roof_rescue_turn())
    outsider = new_user("stranger")
    async with (
        running_gateway(board_settings(tmp_path, ollama_standin, room)) as gw,
        chromium() as browser,
    ):
        base = await board_up(gw) + "/"
        gw.sms_in(VICTIM, "Water rising, 5 of us on the roof of Char Bhadrasan school, help")
        code = await first_case(gw)

        stranger = await new_tab(browser, base, width=390, height=844)
        await stranger.login(outsider.user_id, outsider.password)
        assert stranger.page.url.startswith(base + "login")
        assert "not a coordinator or responder" in await stranger.page.inner_text("#login-error")
        assert await stranger.api("GET", "/api/cases") == 401

        tab = await new_tab(browser, base, width=390, height=844)  # a responder's phone
        await tab.open_board(room.responder.user_id, room.responder.password)
        assert await tab.page.text_content("#me-role") == "responder"
        await tab.page.wait_for_selector(f'li.case[data-code="{code}"]', timeout=30_000)

        async def pending() -> bool:
            rows = await gw.rows("SELECT status FROM dispatches")
            return bool(rows) and rows[0][0] == "pending_approval"

        await wait_for(pending, 30)
        await open_case(tab, code)
        assert await tab.page.locator("form.a-approve").count() == 0
        assert await tab.page.locator("form.a-reject").count() == 0
        assert await tab.page.locator("form.a-say").count() == 1  # !say is a responder's too
        # The button is absent AND the server refuses the call, with a reason.
        status = await tab.api("POST", f"/api/cases/{code}/approve", {}, await tab.csrf())
        assert status == 403
        assert (await gw.rows("SELECT status FROM dispatches"))[0][0] == "pending_approval"
        # The responder sees the number masked; it never reaches their page whole.
        assert VICTIM not in await tab.page.content()
        assert await tab.outside_origin() == [] and tab.dialogs == []


async def test_victim_markup_renders_as_text_and_the_live_banner_tracks_the_connection(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    ollama_standin.push_chat(text_reply("We hear you. Where are you?"))
    settings = board_settings(tmp_path, ollama_standin, room)
    async with chromium() as browser:
        async with running_gateway(settings) as gw:
            base = await board_up(gw) + "/"
            tab = await new_tab(browser, base)
            await tab.page.clock.install()  # the page's timers, so a silent minute takes none
            await tab.open_board(room.coordinator.user_id, room.coordinator.password)
            await tab.page.select_option("#f-filter", "all")
            gw.sms_in(VICTIM, XSS)
            code = await first_case(gw)
            row = tab.page.locator(f'li.case[data-code="{code}"]')
            await row.wait_for(timeout=30_000)
            await open_case(tab, code)
            await tab.page.wait_for_selector(".entry.k-in")
            assert XSS in await tab.page.inner_text(".entry.k-in .text")
            assert await tab.page.locator("#injected").count() == 0
            assert await tab.page.locator("img[src=x], main script, aside script").count() == 0
            assert await tab.page.evaluate("window.__pwned") is None
            assert tab.dialogs == [] and tab.errors == []

            # The stream goes silent (no ping for 45 s): lost; it reconnects by itself: back.
            # The page may say both within milliseconds: every banner it shows is recorded.
            await tab.page.evaluate(
                """() => {
                    window.__banners = [];
                    const b = document.getElementById("live-banner");
                    const log = () => window.__banners.push(b.className + ": " + b.textContent);
                    new MutationObserver(log)
                        .observe(b, {attributes: true, childList: true, characterData: true});
                }"""
            )
            await tab.page.clock.run_for(45_000)
            await tab.page.wait_for_selector("#live-banner.back", timeout=30_000)
            shown = await tab.page.evaluate("window.__banners")
            lost_at = next(i for i, b in enumerate(shown) if b.startswith("banner lost"))
            assert "Live connection lost" in shown[lost_at]
            assert any(b.startswith("banner back") for b in shown[lost_at:]), shown
            await tab.page.evaluate("window.__banners = []")

        # The gateway stops: the stream ends, the banner says so (and stays: nothing answers).
        await tab.page.wait_for_selector("#live-banner.lost", timeout=30_000)
        assert "Live connection lost" in await tab.page.inner_text("#live-banner")
        assert await tab.page.inner_text("#live-state") == "offline"
        assert await tab.outside_origin() == []
