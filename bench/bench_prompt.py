"""How much of each model prompt Ollama's prompt cache can reuse: git main's prompt assembly
against this tree's, on the same stream of turns, in the same run.

~200 consecutive model turns, as one gateway would take them on a flood night: victims writing in
English, Bengali, Hindi, Urdu and romanised text (drills/templates/), first messages and
follow-ups (so some turns carry history), some first messages dispatching a team (so the case
facts change), and staff questions from responders and coordinators in between. Each tree runs
the stream through its real flows (intake, victim and responder flows, reply guard, tool
registry, the LLM client) against the Ollama stand-in, with the prebuilt protocol library
(keyword search); the first chat request of each turn is its prompt. git main's flows run from a
temporary copy (`git archive`), with only the desk harness taken from this tree.

The prompt text is rendered the way Ollama's Gemma 4 template lays it out
(tests/harness/gemma_prompt.py: system text + tool declarations, then the turns). Tokens are
estimated as characters / 4 (docs/facts.md: within ±9 % of Gemma's tokenizer for EN/BN/HI/UR; no
tokenizer is installed). "Shared" is the longest byte-identical prefix with the previous turn's
prompt, as a share of this prompt: what a runner with one slot skips evaluating. "Best of 4" is
the longest prefix shared with any of the 4 previous prompts: roughly what OLLAMA_NUM_PARALLEL=4
slots can reuse (the runner picks the slot with the longest common prefix).

    .venv/bin/python bench/bench_prompt.py [--turns 200] [--base main]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (sys.path)
from _common import ROOT, median, pct, table

from tests.harness.gemma_prompt import render, shared_prefix, static_prefix

PLACES = ["Ulipur", "Chilmari", "Rowmari", "Nageshwari", "Char Bhadrasan", "Kurigram"]
LANGS = ["en", "en", "bn", "bn", "hi", "ur", "romanised"]
REPLIES = {
    "en": "Help is being arranged. 1. Stay on the roof [P1]. 2. Keep children close.",
    "romanised": "Help is being arranged. 1. Stay high [P1]. 2. Keep children close.",
    "bn": "সাহায্য আসছে। ১. ছাদে থাকুন [P1]। ২. শিশুদের কাছে রাখুন।",
    "hi": "मदद आ रही है। 1. छत पर रहें [P1]। 2. बच्चों को पास रखें।",
    "ur": "مدد آ رہی ہے۔ 1. چھت پر رہیں [P1]۔ 2. بچوں کو پاس رکھیں۔",
}
STAFF = [
    ("@rina:localhost", "responder"),
    ("@tariq:localhost", "responder"),
    ("@karim:localhost", "coordinator"),
    ("@mou:localhost", "coordinator"),
]
STAFF_ASKS = [
    "which cases near {place} have no team yet?",
    "what is the latest from {place}?",
    "list the open critical cases",
    "how many people are still waiting for boats around {place}?",
    "anything new in the last hour I should pass to the boat crews?",
    "summarise the night for the morning briefing",
]
STAFF_REPLY = "Three open cases near Ulipur; two have no team yet."


def stream(turns: int, seed: int) -> list[dict[str, Any]]:
    """The turns, in order: a victim's first message, a follow-up from a recent sender, or a
    staff question (about one turn in seven)."""
    rnd = random.Random(seed)
    texts = {
        lang: tomllib.loads((ROOT / "drills" / "templates" / f"{lang}.toml").read_text("utf-8"))
        for lang in set(LANGS)
    }
    senders: list[tuple[str, str, int]] = []  # (number, lang, messages sent)
    out: list[dict[str, Any]] = []
    while len(out) < turns:
        place, n = rnd.choice(PLACES), rnd.randint(2, 9)
        if rnd.random() < 1 / 7:
            peer, role = rnd.choice(STAFF)
            text = rnd.choice(STAFF_ASKS).format(place=place)
            out.append({"role": role, "peer": peer, "text": text, "reply": STAFF_REPLY})
            continue
        recent = [s for s in senders[-12:] if s[2] < 4]
        if recent and rnd.random() < 0.4:
            peer, lang, sent = rnd.choice(recent)
            senders[senders.index((peer, lang, sent))] = (peer, lang, sent + 1)
            kind = rnd.choice(["other", "flood", "critical", "hostile"])
        else:
            peer, lang = f"+88017{len(senders):08d}", rnd.choice(LANGS)
            senders.append((peer, lang, 1))
            kind = "critical" if rnd.random() < 0.5 else "other"
        pool = texts[lang].get(kind) or texts[lang]["other"]  # hostile texts are English only
        turn: dict[str, Any] = {
            "role": "public",
            "peer": peer,
            "lang": lang,
            "text": rnd.choice(pool).format(place=place, n=n),
            "reply": REPLIES[lang],
        }
        if kind == "critical" and rnd.random() < 0.5:
            turn["dispatch"] = {
                "location": f"{place} school roof",
                "priority": "critical",
                "people_count": n,
                "needs": "boat",
            }
        out.append(turn)
    return out


def capture(tree: Path, stream_file: Path, tmp: Path, label: str) -> list[Any]:
    index = tmp / f"index-{label}"
    index.mkdir()
    shutil.copy(ROOT / "protocols" / "prebuilt-index" / "fts.db", index / "fts.db")
    out = tmp / f"{label}.json"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    script = tree / "bench" / "_prompt_capture.py"
    subprocess.run(
        [sys.executable, str(script), str(stream_file), str(index), str(out)],
        cwd=tree,
        env=env,
        check=True,
    )
    result: list[Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def base_tree(base: str, tmp: Path) -> Path:
    """git ``base``'s files, with this tree's desk harness and capture script."""
    tree = tmp / "base"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", base], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for rel in ("tests/harness/desk.py", "bench/_prompt_capture.py"):
        shutil.copy(ROOT / rel, tree / rel)
    return tree


def measure(bodies: list[Any], turns: list[dict[str, Any]]) -> dict[str, Any]:
    prompts = [
        (render(b), t["role"] == "public", b) for b, t in zip(bodies, turns, strict=True) if b
    ]
    tokens, shared, best4, fresh, switch_shared = [], [], [], [], []
    for i, (text, public, _body) in enumerate(prompts):
        tokens.append(len(text) / 4)
        if i == 0:
            continue
        prev, prev_public, _ = prompts[i - 1]
        common = shared_prefix(prev, text)
        shared.append(common / len(text))
        fresh.append((len(text) - common) / 4)
        best4.append(
            max(shared_prefix(p, text) for p, _, _ in prompts[max(0, i - 4) : i]) / len(text)
        )
        if public != prev_public:
            switch_shared.append(common / len(text))
    statics = {static_prefix(b) for _, _, b in prompts}
    return {
        "turns": len(prompts),
        "tokens": tokens,
        "shared": shared,
        "fresh": fresh,
        "best4": best4,
        "switch": switch_shared,
        "static_prefixes": len(statics),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--base", default="main", help="git ref of the 'before' assembly")
    args = ap.parse_args()
    turns = stream(args.turns, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-prompt-") as name:
        tmp = Path(name)
        stream_file = tmp / "stream.json"
        stream_file.write_text(json.dumps(turns, ensure_ascii=False), encoding="utf-8")
        results: dict[str, dict[str, Any]] = {}
        try:
            base = base_tree(args.base, tmp)
        except (OSError, subprocess.CalledProcessError) as exc:  # no git, or no such ref
            print(f"before: git {args.base} not available ({exc}); this tree only")
        else:
            bodies = capture(base, stream_file, tmp, "base")
            results[f"before ({args.base})"] = measure(bodies, turns)
        results["after (this tree)"] = measure(capture(ROOT, stream_file, tmp, "this"), turns)
    langs = sorted({t["lang"] for t in turns if t["role"] == "public"})
    staff = sum(t["role"] != "public" for t in turns)
    print(
        f"{args.turns} turns (seed {args.seed}): {args.turns - staff} from victims "
        f"({', '.join(langs)}), {staff} from staff; tokens = characters / 4"
    )
    rows = []
    for label, m in results.items():
        rows.append(
            [
                label,
                m["turns"],
                median(m["tokens"]),
                pct(m["tokens"], 90),
                f"{median(m['shared']):.0%}",
                f"{pct(m['shared'], 10):.0%}",
                f"{median(m['switch']):.0%}",
                f"{median(m['best4']):.0%}",
                median(m["fresh"]),
                m["static_prefixes"],
            ]
        )
    print(
        table(
            [
                "assembly",
                "model turns",
                "tokens/turn p50",
                "p90",
                "shared with previous p50",
                "p10",
                "p50 at a victim↔staff switch",
                "best of 4 slots p50",
                "tokens to evaluate p50",
                "distinct system turns",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
