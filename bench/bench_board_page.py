"""The incident board's page in a real headless Chromium against a whole gateway (local Synapse
for the login, libGammu dummy modem, Ollama stand-in), with 5,000 open cases in the database.

1. First page: navigation to the board until the list, map and teams are drawn (body.ready),
   median of 3 loads, and one list redraw's time with 5,000 cases.
2. Live: 50 SMS/s for 10 s (500 new cases) while the board is open: SMS injected → the case's
   event reaches the page (its own EventSource), p50/p95/max; the list's redraw time under it.
3. The gateway's RSS before and after the burst with the board open.

Run: .venv/bin/python bench/bench_board_page.py   (needs Debian's chromium)"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
import psutil
from _common import median, pct, table
from _matrix_common import create_room, local_synapse, make_client, matrix_section, register
from bench_board import fill

from tests.harness.browser import chromium, free_port, new_tab
from tests.harness.gateway import make_settings, running_gateway, wait_for
from tests.harness.ollama_standin import OllamaStandIn, text_reply

CASES = 5_000
RATE = 50  # SMS per second
SECONDS = 10

WATCH = """() => {
  window.__seen = {};
  window.__renders = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__renders.push(e.duration)))
    .observe({ type: "measure", buffered: false });
  const es = new EventSource("/api/events");
  es.addEventListener("case", (e) => {
    const c = JSON.parse(e.data);
    if (!(c.code in window.__seen)) window.__seen[c.code] = Date.now() / 1000;
  });
}"""


async def run() -> None:
    logging.disable(logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as tmp,
        local_synapse(Path(tmp)) as hs,
        OllamaStandIn(default=text_reply("We hear you. Stay high.")) as standin,
    ):
        bot, coord = register(hs, "bot"), register(hs, "coord")
        owner = make_client(hs, coord)
        room_id = await create_room(owner, "coordination", [bot.user_id])
        await owner.close()
        settings = make_settings(
            Path(tmp),
            standin.url,
            matrix=matrix_section(hs, bot, room_id, [coord.user_id], Path(tmp)),
            board={"enabled": True, "port": free_port()},
            queue={"per_sender_per_hour": 10_000},
            broadcasts={"sitrep_every_min": 0},
        )
        async with running_gateway(settings) as gw, chromium() as browser:

            async def up() -> bool:
                return gw.app.board is not None and gw.app.board.url is not None

            await wait_for(up, 30)
            base = f"http://127.0.0.1:{settings.board.port}/"
            await fill(gw.db, CASES)  # numbers +88017…: the live SMS below use +88016…
            tab = await new_tab(browser, base, width=1440, height=900)
            await tab.login(coord.user_id, coord.password)
            loads = []
            for _ in range(3):
                started = time.perf_counter()
                await tab.page.goto(base)
                await tab.page.wait_for_selector("body.ready", timeout=60_000)
                loads.append(time.perf_counter() - started)
            first_render = await tab.page.evaluate(
                "performance.getEntriesByName('board-render').at(-1)?.duration ?? NaN"
            )
            rows = await tab.page.locator("li.case").count()
            api_s = await tab.page.evaluate(
                """performance.getEntriesByType("resource")
                    .filter((e) => e.name.includes("/api/cases")).at(-1)?.duration / 1000"""
            )

            await tab.page.evaluate(WATCH)
            await asyncio.sleep(1)
            proc = psutil.Process(os.getpid())
            rss_before = proc.memory_info().rss
            sent: dict[str, float] = {}
            t0 = time.monotonic()
            for i in range(RATE * SECONDS):
                number = f"+88016{i:08d}"
                sent[number] = time.time()
                gw.sms_in(number, f"water in the house {i}, 3 people, need a boat")
                await asyncio.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))
            burst_s = time.monotonic() - t0

            async def all_cases() -> bool:
                rows = await gw.rows("SELECT COUNT(*) FROM incidents WHERE reporter LIKE '+88016%'")
                return rows[0][0] >= RATE * SECONDS

            await wait_for(all_cases, timeout=300, every=0.5)
            await asyncio.sleep(3)
            rss_after = proc.memory_info().rss
            seen: dict[str, float] = await tab.page.evaluate("window.__seen")
            renders: list[float] = await tab.page.evaluate("window.__renders")
            reporters = dict(
                (r[0], r[1])
                for r in await gw.rows(
                    "SELECT case_code, reporter FROM incidents WHERE reporter LIKE '+88016%'"
                )
            )
            lat = [seen[c] - sent[p] for c, p in reporters.items() if c in seen and p in sent]
            missing = len(reporters) - len(lat)

    print(
        table(
            ["what", "value"],
            [
                ["open cases in the database", CASES],
                ["first page usable (body.ready), median of 3, s", median(loads)],
                ["first page, slowest of 3, s", max(loads)],
                ["of which GET /api/cases (5,000 cases, server), s", api_s],
                ["rows drawn (the rest one search away)", rows],
                ["one list redraw with 5,000 cases, ms", first_render],
            ],
        )
    )
    print()
    print(
        table(
            ["live, 50 SMS/s for 10 s", "value"],
            [
                ["SMS injected in, s", burst_s],
                ["new cases", len(reporters)],
                ["events seen by the page", len(lat)],
                ["cases never seen live", missing],
                ["SMS in → case event at the page, p50 s", pct(lat, 50)],
                ["p95 s", pct(lat, 95)],
                ["max s", max(lat) if lat else float("nan")],
                ["list redraws during the burst", len(renders)],
                ["redraw p95 ms", pct(renders, 95)],
                ["gateway RSS growth over the burst, MB", (rss_after - rss_before) / 1e6],
            ],
        )
    )
    print(
        "\nThe latency includes the gateway's own work (intake, case creation, the model's "
        "turn is not on this path: the case exists before the model answers)."
    )


if __name__ == "__main__":
    asyncio.run(run())
