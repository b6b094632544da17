"""Text ↔ SMS parts, without a phone: encoding, part counts, the dedup key, numbers in logs.

libGammu's own encoder (``ConcatenatedAutoTextLong``) picks GSM-7 or UCS-2, so Bengali never
degrades to ``???``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import gammu

SmsPart = dict[str, Any]

MAX_PARTS: Final = 50  # libGammu / handsets: a concatenated SMS has at most 50 parts here

_NUMBER_RE: Final = re.compile(r"\+?[0-9]{1,40}")
_UNSENDABLE: Final = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")


def valid_number(number: str) -> bool:
    """A number a modem can send to (digits, optional ``+``); alphanumeric sender ids are not."""
    return _NUMBER_RE.fullmatch(number) is not None


def sendable_text(text: str) -> str:
    """Control characters (except CR/LF) become spaces before encoding.

    Measured with libGammu 1.45.1: NUL ends the C string (the rest of the message is lost),
    U+0001 reaches the handset as ``~``, TAB forces UCS-2 (3x the parts) and none of them
    display on a phone. Everything else, Bengali and emoji included, goes through unchanged."""
    return _UNSENDABLE.sub(" ", text)


def encode_text(text: str) -> list[SmsPart]:
    """Split ``text`` into SMS-SUBMIT parts; libGammu chooses GSM-7 or UCS-2 (pure, no phone)."""
    parts: list[SmsPart] = gammu.EncodeSMS(
        {
            "Class": -1,
            "Entries": [{"ID": "ConcatenatedAutoTextLong", "Buffer": sendable_text(text)}],
        }
    )
    return parts


def count_parts(text: str) -> int:
    """How many SMS ``text`` needs (what operators count against the per-SIM rate)."""
    return len(encode_text(text))


def _sha256(data: str) -> str:
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()


def dedup_key(number: str, smsc_time_iso: str, payload: str) -> str:
    """Invariant 2: sender + SMSC timestamp + text hash; stable across re-reads of the SIM."""
    return _sha256(f"{number}|{smsc_time_iso}|{_sha256(payload)}")


def smsc_iso(part: Mapping[str, Any]) -> str:
    """The SMSC timestamp of a received part, ISO 8601 ('' when the part has none)."""
    # For SMS-DELIVER, gammu's "DateTime" is the SMSC timestamp (TP-SCTS); "SMSCDateTime" is only
    # meaningful in status reports (the dummy even fills it with "now", which would break dedup).
    stamp = part.get("DateTime")
    return stamp.isoformat() if isinstance(stamp, datetime) else ""
