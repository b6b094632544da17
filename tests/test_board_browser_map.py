"""The incident board's map in a real browser (headless Chromium) with many pins: every open
case with a position is on the map once the board says it is ready (the pins are clustered in
slices between frames and their elements built only when shown, so "ready" must wait for the
last slice), and a case that gets a position while the board is open adds its pin live."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from bot.models import Channel, Priority
from bot.store import incidents
from tests.harness.board_client import board_settings, board_up
from tests.harness.browser import Tab, chromium, new_tab
from tests.harness.gateway import Gateway, running_gateway, wait_for
from tests.harness.matrix_room import Room
from tests.harness.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.timeout(240)

PINS = 2500  # as many as the bench's: several clustering slices (one per ~50 ms of work)

# The map shows every pin either alone or inside a cluster that shows its count.
ON_MAP = """() => {
  const alone = document.querySelectorAll("#map .pin").length;
  const clustered = [...document.querySelectorAll("#map .cluster")]
    .reduce((n, el) => n + Number(el.textContent), 0);
  return alone + clustered;
}"""
# What the map shows at the very moment the page says it is ready (before any later slice).
AT_READY = f"""
new MutationObserver((_, seen) => {{
  if (!document.body?.classList.contains("ready")) return;
  window.__pinsAtReady = ({ON_MAP})();
  seen.disconnect();
}}).observe(document, {{attributes: true, subtree: true}});
"""


async def seed(gw: Gateway, count: int) -> str:
    """``count`` open cases around the map's centre, each with a position, and one more
    without: its code."""
    rnd = random.Random(14)
    now = time.time() - 600
    async with gw.db.transaction() as conn:
        for n in range(count + 1):
            number = f"+88017{n:08d}"
            facts = {"summary": f"water rising near landmark {n}", "people_count": n % 5 + 1}
            case = await incidents.create(
                conn, channel=Channel.SMS, reporter=number, conversation=number,
                priority=rnd.choice(list(Priority)), lang="en", now=now + n, **facts,
            )  # fmt: skip
            if n < count:  # within ~1 km of the centre: all of them in the first view
                lat, lon = 23.81 + rnd.uniform(-0.01, 0.01), 90.41 + rnd.uniform(-0.01, 0.01)
                await incidents.update(conn, case.id, now + n, lat=lat, lon=lon)
    return case.case


async def pins_on_map(tab: Tab) -> int:
    shown: int = await tab.page.evaluate(ON_MAP)
    return shown


async def test_every_pin_is_on_the_map_when_ready_and_a_live_fix_adds_one(
    tmp_path: Path, ollama_standin: OllamaStandIn, coordination: Room
) -> None:
    room = coordination
    settings = board_settings(tmp_path, ollama_standin, room, center_lat=23.81, center_lon=90.41)
    async with running_gateway(settings) as gw, chromium() as browser:
        base = await board_up(gw) + "/"
        late = await seed(gw, PINS)
        tab = await new_tab(browser, base, width=1440, height=900)
        await tab.context.add_init_script(AT_READY)
        await tab.open_board(room.coordinator.user_id, room.coordinator.password)
        assert await tab.page.evaluate("window.__pinsAtReady") == PINS
        assert await pins_on_map(tab) == PINS

        # The case without a position gets a GPS fix: its pin joins the map without a reload.
        await tab.page.evaluate("window.__sameDocument = true")
        async with gw.db.transaction() as conn:
            case = await incidents.by_case_in(conn, late)
            assert case is not None
            await incidents.update(conn, case.id, time.time(), lat=23.811, lon=90.411)

        async def joined() -> bool:
            return await pins_on_map(tab) == PINS + 1

        await wait_for(joined, 30)
        assert await tab.page.evaluate("window.__sameDocument") is True
        assert tab.errors == [] and tab.dialogs == []
        assert await tab.outside_origin() == []
