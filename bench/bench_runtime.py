"""Runtime footprint of `lifeline run` as a subprocess (dummy modem, model stand-in, Matrix off):
start-up time to ready, RSS idle and under load (psutil), prompt tokens per typical turn (the
stand-in's prompt_eval_count as recorded in model_turns, and chars/4 of the raw request), and
model calls per message (dispatch turns take two).

Run: .venv/bin/python bench/bench_runtime.py"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
import psutil
from _common import median, pct, table

from tests.harness.ollama_standin import OllamaStandIn, Spec, delayed, text_reply, tool_reply
from tests.harness.process import GatewayProcess, wait_until, write_config

LOAD = 150


def model(body: dict[str, Any]) -> Spec:
    msgs = body.get("messages") or []
    user = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "")
    if "roof" in user and not any(m.get("role") == "tool" for m in msgs):
        return tool_reply(
            {
                "name": "dispatch_rescue_team",
                "arguments": {"location": "school roof", "priority": "critical", "people_count": 4},
            }
        )
    return delayed(0.01, text_reply("Stay safe. 1. Go to high ground. 2. Keep your phone on. [P1]"))


def rss_mb(proc: psutil.Process) -> float:
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20


def main() -> None:
    startups: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, OllamaStandIn(hook=model) as st:
        for i in range(3):
            d = Path(tmp) / f"start{i}"
            d.mkdir()
            gw = GatewayProcess(write_config(d, st.url))
            startups.append(gw.start())
            gw.terminate()
        d = Path(tmp) / "load"
        d.mkdir()
        gw = GatewayProcess(
            write_config(
                d, st.url, queue={"per_sender_per_hour": 1000}, dispatch={"approval": "auto"}
            )
        )
        gw.start()
        try:
            proc = psutil.Process(gw.proc.pid if gw.proc else 0)
            time.sleep(3)
            idle = rss_mb(proc)
            st.clear_requests()
            for i in range(LOAD):
                text = (
                    f"{i % 5 + 2} people on the roof near school {i}, water rising"
                    if i % 3 == 0
                    else f"when does relief camp {i} open?"
                )
                gw.sms_in(f"+88017{i:08d}", text)
            peak = idle
            deadline = time.monotonic() + 300

            def done() -> bool:
                nonlocal peak
                peak = max(peak, rss_mb(proc))
                q = "SELECT COUNT(*) FROM inbox WHERE status='done'"
                return gw.query(q)[0][0] >= LOAD or time.monotonic() > deadline

            wait_until(done, timeout=310, every=0.2)
            tokens = [r[0] for r in gw.query("SELECT prompt_tokens FROM model_turns WHERE ok=1")]
            model_msgs = gw.query("SELECT COUNT(*) FROM inbox WHERE needs_model=1")[0][0]
            after = rss_mb(proc)
        finally:
            gw.terminate()
    bodies = st.chat_requests
    raw_chars = [
        len(json.dumps(b.get("messages"), ensure_ascii=False))
        + len(json.dumps(b.get("tools") or []))
        for b in bodies
    ]
    first_turns = [b for b in bodies if not any(m.get("role") == "tool" for m in b["messages"])]
    print("### Runtime footprint of `lifeline run` (subprocess, dummy modem, stand-in model)\n")
    print(
        table(
            ["measure", "value"],
            [
                ("start-up to ready, median of 3 (s)", median(startups)),
                ("start-up to ready, max (s)", max(startups)),
                ("RSS idle (MiB)", idle),
                (f"RSS peak under load, {LOAD} SMS (MiB)", peak),
                ("RSS after load (MiB)", after),
                ("prompt tokens per turn, prompt_eval_count p50", median(tokens)),
                ("prompt tokens per turn, prompt_eval_count p95", pct(tokens, 95)),
                ("prompt tokens per turn, raw chars/4 p50", median([c / 4 for c in raw_chars])),
                ("model calls per model-routed message", len(bodies) / max(1, model_msgs)),
                ("first-round calls per message", len(first_turns) / max(1, model_msgs)),
            ],
        )
    )


if __name__ == "__main__":
    main()
