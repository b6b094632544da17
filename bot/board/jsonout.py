"""JSON for the board: ``<``, ``>`` and ``&`` are written as ``\\u003c`` … so victim text can never
read as markup, even to something that sniffs (the page itself uses textContent only)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_ESCAPES)


def response(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=dumps)


def error(status: int, message: str) -> web.Response:
    return response({"error": message}, status=status)
