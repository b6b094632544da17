"""Heavy imports (nio, gammu, chromadb) done off the event loop."""

from __future__ import annotations

import asyncio
import importlib
import sys


async def import_off_loop(*modules: str) -> None:
    """Import heavy modules on a worker thread, so start-up never stalls the event loop while
    the outbox is already sending (an import of a module already loaded is a dict lookup)."""
    for name in modules:
        if name not in sys.modules:
            await asyncio.to_thread(importlib.import_module, name)
