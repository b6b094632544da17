"""Scheduled broadcasts: public SMS advisories to area subscribers and the sitrep to coordinators.

One responsibility a module: ``args`` (argument checks), ``advisory`` (what an advisory says and
its outbox rows), ``sitrep`` (the sitrep's text, chart data and posts), ``engine`` (scheduler jobs
and fires, idempotent per slot and recipient) and ``commands`` (``!advise`` / ``!broadcast``, the
``Broadcasts`` the app runs). SMS advisories start with ADVISORY_PREFIX, so a subscriber knows who
is texting them."""

from handlers.broadcasts.advisory import ADVISORY_PREFIX, advisory_sms
from handlers.broadcasts.args import ArgumentError, next_local_time, split_area
from handlers.broadcasts.commands import TWIN_WINDOW_S, Broadcasts
from handlers.broadcasts.engine import CHUNK_SIZE, FireResult

__all__ = [
    "ADVISORY_PREFIX",
    "CHUNK_SIZE",
    "TWIN_WINDOW_S",
    "ArgumentError",
    "Broadcasts",
    "FireResult",
    "advisory_sms",
    "next_local_time",
    "split_area",
]
