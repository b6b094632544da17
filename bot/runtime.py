"""The live objects of a running gateway, built by bot/app.py and read by the channels, the status
report and tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.intake import Intake
from bot.llm.pool import ModelPool
from bot.store.db import Database
from bot.wakers import Wakers
from handlers.context import Services

if TYPE_CHECKING:
    from bot.drill.homeserver import DrillInfo
    from bot.region.service import Region
    from bot.transports.matrix import MatrixTransport
    from bot.transports.sms import ModemPool
    from protocols.search import ProtocolSearch


@dataclass
class Runtime:
    """Live objects, exposed for the CLI's status and for tests. `services.settings` is the live
    configuration: drill mode points its Matrix part at the local homeserver once it is up."""

    db: Database
    llm: ModelPool
    services: Services
    intake: Intake
    wakers: Wakers = field(default_factory=Wakers)
    pool: ModemPool | None = None
    matrix: MatrixTransport | None = None
    protocols: ProtocolSearch | None = None
    drill: DrillInfo | None = None
    matrix_error: str | None = None  # why the Matrix channel is not up yet (it keeps retrying)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    region: Region | None = None  # [region]: the regional room's reader and commands
