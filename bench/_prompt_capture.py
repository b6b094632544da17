"""Runs a stream of turns through one tree's real flows and writes the chat request each turn sent
first (bench_prompt.py runs it in git main's copy and in this tree; only the harness
tests/harness/desk.py is this tree's in both).

Usage: python bench/_prompt_capture.py STREAM.json INDEX_DIR OUT.json (cwd and PYTHONPATH = the
tree). The model is the Ollama stand-in, the library the prebuilt index (keyword search)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from bot.models import Role
from protocols.index import ProtocolIndex
from protocols.search import ProtocolSearch
from tests.harness.desk import desk
from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply

ROLES = {"responder": Role.RESPONDER, "coordinator": Role.COORDINATOR}


async def capture(stream: list[dict[str, Any]], index_dir: Path, tmp: Path) -> list[Any]:
    index = ProtocolIndex(index_dir, None)
    await index.open()
    out: list[Any] = []
    try:
        with OllamaStandIn() as standin:
            async with desk(tmp, standin.url, ProtocolSearch(index, None)) as d:
                for turn in stream:
                    if turn["role"] == "public":
                        item = await d.receive(turn["text"], turn["peer"])
                    else:
                        role = ROLES[turn["role"]]
                        item = await d.receive_staff(turn["text"], turn["peer"], role)
                    row = await d.row(item)
                    if row.decision is None or row.decision.route != "model":
                        out.append(None)  # throttled, merged or a keyword: no model turn
                        continue
                    if turn.get("dispatch"):
                        call = {"name": "dispatch_rescue_team", "arguments": turn["dispatch"]}
                        standin.push_chat(tool_reply(call))
                    standin.push_chat(text_reply(turn["reply"]))
                    before = len(standin.chat_requests)
                    if turn["role"] == "public":
                        outs = await d.victim.handle(row)
                    else:
                        outs = await d.responder.model_turn(row, row.decision)
                    d.now += 20
                    await d.finish(row, outs)
                    d.now += 10
                    out.append(standin.chat_requests[before])
    finally:
        await index.close()
    return out


def main() -> None:
    logging.disable(logging.WARNING)
    stream = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="bench-prompt-") as tmp:
        bodies = asyncio.run(capture(stream, Path(sys.argv[2]), Path(tmp)))
    Path(sys.argv[3]).write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
