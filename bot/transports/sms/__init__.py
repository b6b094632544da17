"""The SMS channel: GSM modems through python-gammu, several SIMs behind one ``ModemPool``.

Modules, one job each:

- ``codec``: text → SMS parts (libGammu picks GSM-7 or UCS-2), part counts, the dedup key.
- ``reassembly``: multipart reassembly without I/O (linked parts in, messages and a delete
  list out; partial messages after ``multipart_timeout_s``).
- ``thread_calls``: every libGammu call, run on the modem's own worker thread.
- ``health``: a modem's state, counters and state-change log lines; watchdog backoff.
- ``modem``: one modem's poll loop, persist-then-delete, sends and watchdog.
- ``pool``: per-SIM pacing, least-loaded choice, failover.
- ``errors``: ``SendError`` (raised as ``TransientSendError`` / ``PermanentSendError``),
  ``ModemError``, ``ReceiveHandlerError``.

This front re-exports what the rest of the gateway uses. Nothing here imports the simulator
(``bot.sim``): whoever wires a dummy modem passes ``record_sent`` in.
"""

from __future__ import annotations

from bot.transports.sms.codec import (
    MAX_PARTS,
    count_parts,
    dedup_key,
    encode_text,
    sendable_text,
)
from bot.transports.sms.errors import (
    ModemError,
    PermanentSendError,
    ReceiveHandlerError,
    SendError,
    TransientSendError,
)
from bot.transports.sms.health import ModemHealth
from bot.transports.sms.modem import Modem, OnAccepted, OnReceive, Pace, RecordSent
from bot.transports.sms.pool import ModemPool
from bot.transports.sms.reassembly import PARTIAL_MARKER

__all__ = [
    "MAX_PARTS",
    "PARTIAL_MARKER",
    "Modem",
    "ModemError",
    "ModemHealth",
    "ModemPool",
    "OnAccepted",
    "OnReceive",
    "Pace",
    "PermanentSendError",
    "ReceiveHandlerError",
    "RecordSent",
    "SendError",
    "TransientSendError",
    "count_parts",
    "dedup_key",
    "encode_text",
    "sendable_text",
]
