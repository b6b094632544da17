"""How a request handler finds the running board (an aiohttp app key) and its viewer.

The app holds the board through a ``BoardRef`` emptied at stop: aiohttp caches every app in a
process-wide middleware cache (up to 1024 entries), and an app still naming the board would keep
the whole stopped gateway alive with it (its modem threads too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from bot.board.sessions import Session
from bot.models import Role

if TYPE_CHECKING:
    from bot.board.server import Board


@dataclass
class BoardRef:
    board: Board | None


BOARD: web.AppKey[BoardRef] = web.AppKey("board", BoardRef)
SESSION: web.RequestKey[Session] = web.RequestKey("session")  # set by the guard
ROLE: web.RequestKey[Role] = web.RequestKey("role")  # the viewer's role now


def board_of(request: web.Request) -> Board:
    board = request.app[BOARD].board
    if board is None:
        raise web.HTTPServiceUnavailable(text="the board is stopping")
    return board
