"""The incident board (issue 14): a live web page for the control room, served by the gateway.

``server`` (the aiohttp app, security headers, session guard, lifecycle), ``auth`` (homeserver
login check, failed-login limit), ``sessions``, ``csrf``, ``pages`` (login/logout/the pages),
``api`` (reads), ``events`` (live updates over SSE), ``actions`` (case actions through the
``!command`` handlers), ``views`` (JSON shapes), ``map`` and ``tiles`` (the offline basemap).
The page itself is ``static/`` (HTML/JS/CSS). The API: README, "The incident board"."""

from bot.board.server import Board

__all__ = ["Board"]
