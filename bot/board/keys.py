"""How a request handler finds the running board (an aiohttp app key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from bot.board.sessions import Session
from bot.models import Role

if TYPE_CHECKING:
    from bot.board.server import Board

BOARD: web.AppKey[Board] = web.AppKey("board")
SESSION: web.RequestKey[Session] = web.RequestKey("session")  # set by the guard
ROLE: web.RequestKey[Role] = web.RequestKey("role")  # the viewer's role now


def board_of(request: web.Request) -> Board:
    return request.app[BOARD]
