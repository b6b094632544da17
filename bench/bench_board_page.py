"""The incident board's page in a real headless Chromium against a whole gateway (local Synapse
for the login, libGammu dummy modems, Ollama stand-in), with 5,000 open cases in the database.

1. First page: navigation to the board until the list, map and teams are drawn (body.ready),
   median of LOADS loads on a running gateway (its protocol index built, as in a control room
   that opens the board on a gateway already at work), with the page's own marks: list drawn,
   pins drawn.
2. Live: 50 SMS/s for 10 s (500 new cases) while the board is open, spread over a pool of
   SIMS simulated SIMs (a real GSM modem takes in a few SMS a second: 50 SMS/s in a district
   arrive over a pool of SIMs; one dummy modem alone takes in only ~33-50 SMS/s). For each
   new case: SMS injected -> its event at the page (an EventSource in the page), and inbox
   committed (the case's created_at, read in the intake transaction) -> at the page.
3. The gateway's RSS before and after the burst with the board open.

Run: .venv/bin/python bench/bench_board_page.py [--sims 8] [--loads 5]  (needs Debian's chromium)"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sys.path)
import psutil
from _common import median, pct, table
from _matrix_common import create_room, local_synapse, make_client, matrix_section, register
from bench_board import fill
from playwright.async_api import CDPSession

from tests.harness.browser import chromium, free_port, new_tab
from tests.harness.gateway import Gateway, make_settings, modems, running_gateway, wait_for
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

# The page's own marks (absent on an older page: NaN), seconds since navigation start.
MARKS = """() => {
  const at = (n) => (performance.getEntriesByName(n).at(-1)?.startTime ?? NaN) / 1000;
  const api = (p) => (performance.getEntriesByType("resource")
      .filter((e) => e.name.includes(p)).at(-1)?.responseEnd ?? NaN) / 1000;
  const wait = (p) => {
    const e = performance.getEntriesByType("resource").filter((e) => e.name.includes(p)).at(-1);
    return e ? (e.responseStart - e.requestStart) / 1000 : NaN;
  };
  const nav = performance.getEntriesByType("navigation")[0];
  return {list: at("board-list-drawn"), pins: at("board-pins-drawn"),
          cases_api: api("/api/cases"), markers_api: api("/api/markers"),
          cases_wait: wait("/api/cases"), html: nav.responseEnd / 1000,
          asked: (performance.getEntriesByType("resource")
              .filter((e) => e.name.includes("/api/cases")).at(-1)?.startTime ?? NaN) / 1000};
}"""


def watch_looks(gw: Gateway) -> list[float]:
    """How long each of the live view's looks takes (the hub's publish), for the table."""
    hub = gw.app.board.hub if gw.app.board is not None else None
    took: list[float] = []
    if hub is None:
        return took
    publish = hub.publish

    async def timed() -> int:
        started = time.perf_counter()
        try:
            return await publish()
        finally:
            took.append(time.perf_counter() - started)

    hub.publish = timed  # type: ignore[method-assign]
    return took


async def main_thread_busy(cdp: CDPSession) -> float:
    """Seconds the page's renderer main thread has worked (script, style, layout, paint):
    the browser's share of a load, which waiting on a loaded machine does not inflate."""
    got = await cdp.send("Performance.getMetrics")
    return float(next(m["value"] for m in got["metrics"] if m["name"] == "TaskDuration"))


async def loop_lag(out: list[float]) -> None:
    """The gateway's event loop: how late a 50 ms sleep wakes (how busy the loop is)."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.05)
        out.append(time.perf_counter() - started - 0.05)


async def watch_commits(path: Path, out: dict[str, float]) -> None:
    """When each new case becomes visible in the database (its commit, within ~25 ms), read on
    a connection of the bench's own: the intake reads its clock before it waits for the
    database, so a case's created_at can be well before its commit in a burst."""

    def new_since(last: int) -> list[tuple[int, str]]:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return conn.execute(
                "SELECT id, case_code FROM incidents WHERE id > ? AND reporter LIKE '+88016%'",
                (last,),
            ).fetchall()

    last = 0
    while True:
        for case_id, code in await asyncio.to_thread(new_since, last):
            out.setdefault(code, time.time())
            last = max(last, case_id)
        await asyncio.sleep(0.025)


async def run(sims: int, loads_n: int) -> None:
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
            sms={"modems": modems(Path(tmp), sims)},
        )
        failure, measured = "", False
        try:
            async with running_gateway(settings) as gw, chromium() as browser:

                async def up() -> bool:
                    return gw.app.board is not None and gw.app.board.url is not None

                await wait_for(up, 30)
                await gw.protocols_ready(300)  # the board opens on a gateway already at work
                base = f"http://127.0.0.1:{settings.board.port}/"
                await fill(gw.db, CASES)  # numbers +88017…: the live SMS below use +88016…
                tab = await new_tab(browser, base, width=1440, height=900)
                await tab.login(coord.user_id, coord.password)
                loads, marks, busy = [], [], []
                cdp = await tab.context.new_cdp_session(tab.page)
                await cdp.send("Performance.enable")
                for _ in range(loads_n):
                    before = await main_thread_busy(cdp)
                    started = time.perf_counter()
                    await tab.page.goto(base)
                    await tab.page.wait_for_selector("body.ready", timeout=60_000)
                    loads.append(time.perf_counter() - started)
                    after = await main_thread_busy(cdp)
                    busy.append(after - before if after >= before else after)
                    marks.append(await tab.page.evaluate(MARKS))
                    await asyncio.sleep(1)  # the sitrep chart the page asks for after ready
                first_render = await tab.page.evaluate(
                    "performance.getEntriesByName('board-render').at(-1)?.duration ?? NaN"
                )
                rows = await tab.page.locator("li.case").count()

                await tab.page.evaluate(WATCH)
                await asyncio.sleep(1)
                looks = watch_looks(gw)
                lag: list[float] = []
                lagging = asyncio.create_task(loop_lag(lag))
                visible: dict[str, float] = {}
                watching = asyncio.create_task(watch_commits(settings.storage.path, visible))
                proc = psutil.Process(os.getpid())
                rss_before = proc.memory_info().rss
                sent: dict[str, float] = {}
                t0 = time.monotonic()
                for i in range(RATE * SECONDS):
                    number = f"+88016{i:08d}"
                    sent[number] = time.time()
                    gw.sms_in(number, f"water in the house {i}, 3 people, need a boat", i % sims)
                    await asyncio.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))
                burst_s = time.monotonic() - t0

                async def all_cases() -> bool:
                    rows = await gw.rows(
                        "SELECT COUNT(*) FROM incidents WHERE reporter LIKE '+88016%'"
                    )
                    return rows[0][0] >= RATE * SECONDS

                await wait_for(all_cases, timeout=300, every=0.5)
                intake_s = time.monotonic() - t0
                await asyncio.sleep(3)
                lagging.cancel()
                watching.cancel()
                rss_after = proc.memory_info().rss
                seen: dict[str, float] = await tab.page.evaluate("window.__seen")
                renders: list[float] = await tab.page.evaluate("window.__renders")
                created = {
                    r[0]: (r[1], float(r[2]))
                    for r in await gw.rows(
                        "SELECT case_code, reporter, created_at FROM incidents"
                        " WHERE reporter LIKE '+88016%'"
                    )
                }
                lat = [
                    seen[c] - sent[p] for c, (p, _) in created.items() if c in seen and p in sent
                ]
                committed = [seen[c] - visible[c] for c in created if c in seen and c in visible]
                intake = [visible[c] - sent[p] for c, (p, _) in created.items() if c in visible]
                missing = len(created) - len(lat)
                measured = True
        except Exception as exc:  # measured already: print the tables, and say it failed
            if not measured:
                raise
            failure = f"{type(exc).__name__}: {exc}"[:300]

    def mark(key: str) -> float:
        return median([m[key] for m in marks])

    print(
        table(
            ["what", "value"],
            [
                ["open cases in the database", CASES],
                [f"first page usable (body.ready), median of {loads_n}, s", median(loads)],
                [f"first page, slowest of {loads_n}, s", max(loads)],
                ["HTML received (since navigation), median s", mark("html")],
                [
                    "GET /api/cases asked / answered (since navigation), median s",
                    f"{mark('asked'):.3g} / {mark('cases_api'):.3g}",
                ],
                [
                    "of which the gateway's wait for it (request -> first byte), median s",
                    mark("cases_wait"),
                ],
                ["GET /api/markers answered, median s", mark("markers_api")],
                ["list drawn (mark board-list-drawn), median s", mark("list")],
                ["pins drawn (mark board-pins-drawn), median s", mark("pins")],
                ["page's main thread busy per load (CDP TaskDuration), median s", median(busy)],
                ["rows drawn (the rest one search away)", rows],
                ["one list redraw (300 rows of 5,000 cases), ms", first_render],
            ],
        )
    )
    print()
    print(
        table(
            [f"live, {RATE} SMS/s for {SECONDS} s over {sims} SIMs", "value"],
            [
                ["SMS injected in, s", burst_s],
                ["all cases committed after, s", intake_s],
                ["new cases", len(created)],
                ["events seen by the page", len(lat)],
                ["cases never seen live", missing],
                [
                    "SMS injected -> committed (modem + intake), p50 / p95 s",
                    f"{pct(intake, 50):.3g} / {pct(intake, 95):.3g}",
                ],
                ["SMS injected -> case event at the page, p50 s", pct(lat, 50)],
                ["p95 s", pct(lat, 95)],
                ["max s", max(lat) if lat else float("nan")],
                [
                    "committed (visible in the database) -> case event at the page, p50 s",
                    pct(committed, 50),
                ],
                ["p95 s", pct(committed, 95)],
                [
                    "the live view's looks (hub publish), count / p50 / p95 ms",
                    f"{len(looks)} / {pct(looks, 50) * 1e3:.3g} / {pct(looks, 95) * 1e3:.3g}",
                ],
                [
                    "gateway event loop lag during the burst, p50 / p95 ms",
                    f"{pct(lag, 50) * 1e3:.3g} / {pct(lag, 95) * 1e3:.3g}",
                ],
                ["list redraws during the burst", len(renders)],
                ["redraw p95 ms", pct(renders, 95)],
                ["gateway RSS growth over the burst, MB", (rss_after - rss_before) / 1e6],
            ],
        )
    )
    if failure:
        print(f"\nThe gateway stopped with an error at the end of the run: {failure}")
    print(
        "\nThe latency includes the gateway's own work (intake, case creation, the model's "
        "turn is not on this path: the case exists before the model answers)."
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sims", type=int, default=8, help="simulated SIMs sharing the load")
    parser.add_argument("--loads", type=int, default=5, help="page loads to take the median of")
    args = parser.parse_args()
    asyncio.run(run(args.sims, args.loads))
