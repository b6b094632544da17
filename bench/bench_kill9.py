"""Duplicate SMS under repeated kill -9 (issue 10 item 14): a 150-message run from 60 senders,
the gateway process killed 20 times at random moments (most of them during start-up, when the
protocol index opens while the outbox already sends) and restarted each time. An SMS goes out
twice only when a kill lands between the modem accepting it and the 'sent' commit.

Target: 0 duplicates in most runs, never more than 1.

Run: .venv/bin/python bench/bench_kill9.py [runs]     (default 1 run; ~3-5 min each)"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import table

from tests.harness.gateway import modems
from tests.harness.ollama_standin import OllamaStandIn, Spec, delayed, text_reply
from tests.harness.process import GatewayProcess, idle, sent_keys, wait_until, write_config

MESSAGES, SENDERS, KILLS = 150, 60, 20


def model(body: dict[str, Any]) -> Spec:
    return delayed(0.05, text_reply("Noted. 1. Stay high. 2. Keep your phone on."))


def run(seed: int) -> tuple[int, int, int, int]:
    """(kills, SMS rows sent, SMS accepted by the modems, duplicate SMS)."""
    rng = random.Random(seed)
    kill_at = set(rng.sample(range(5, MESSAGES), KILLS))
    with tempfile.TemporaryDirectory() as tmp, OllamaStandIn() as standin:
        standin.hook = model
        gw = GatewayProcess(
            write_config(
                Path(tmp),
                standin.url,
                queue={"retry_base_s": 0.5, "retry_max_s": 2, "lease_s": 600},
                sms={"modems": modems(Path(tmp), 2, per_minute=120)},
            )
        )
        try:
            gw.start()
            kills = 0
            for i in range(MESSAGES):
                number = f"+88017{i % SENDERS:08d}"
                gw.sms_in(number, f"water at the door, what should we do? #{i}", modem=i % 2)
                if i in kill_at:
                    time.sleep(rng.uniform(0.1, 1.5))  # sends in flight
                    gw.kill9()
                    kills += 1
                    gw.start(wait_ready=False)
                    time.sleep(rng.uniform(0.2, 2.5))  # often while start-up work runs
                else:
                    time.sleep(0.05)
            wait_until(lambda: idle(gw), timeout=600, every=0.25)
            gw.terminate()
        finally:
            gw.stop_quietly()
        rows = gw.query("SELECT COUNT(*) FROM outbox WHERE status='sent'")[0][0]
        keys = sent_keys(gw)
    accepted = sum(keys.values())
    duplicates = sum(n - 1 for n in keys.values() if n > 1)
    return kills, rows, accepted, duplicates


def main(argv: list[str]) -> None:
    runs = int(argv[0]) if argv else 1
    results = [run(20261203 + r) for r in range(runs)]
    print(
        f"### kill -9 during a {MESSAGES}-message run ({SENDERS} senders, 2 SIMs): "
        "duplicate SMS per run\n"
    )
    print(
        table(
            ["run", "kill -9", "replies sent (rows)", "SMS accepted by modems", "duplicate SMS"],
            [(i + 1, *r) for i, r in enumerate(results)],
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
