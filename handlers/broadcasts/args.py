"""Argument checks for ``!advise`` and ``!broadcast``: every argument is checked before anything
is sent or scheduled, and a wrong one gets a message that says what is wrong and how to fix it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.triage import MAX_AREA_WORDS

MAX_EVERY_MIN = 7 * 24 * 60
MAX_ID_DIGITS = 9
MAX_AREA_CHARS = 60  # subscriptions.normalise_area keeps this much
AT_RE = re.compile(r"^(?P<text>.*?)\s+at\s+(?P<h>[01]?\d|2[0-3])[:.](?P<m>[0-5]\d)\s*$", re.S)
# Anything that ends like "at <digits>:<digits>" is meant as a time: a wrong one is an error.
_AT_LIKE_RE = re.compile(r"\s+at\s+(?P<time>\d+\s*[:.]\s*\d+)\s*$", re.I)

USAGE_ADVISE = "Usage: !advise <area|*> <text> [at HH:MM]"
USAGE_BROADCAST = "Usage: !broadcast list | cancel <id> | every <minutes> <area|*> <text>"


class ArgumentError(ValueError):
    """A coordinator's command argument is wrong: the message says what and how to fix it."""


def split_area(rest: str) -> tuple[str, str]:
    """``"ward 5" boil water`` / ``ward-5 boil water`` -> (area, text)."""
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        end = rest.find(rest[0], 1)
        if end > 0:
            return rest[1:end].strip(), rest[end + 1 :].strip()
    head, _, tail = rest.partition(" ")
    return head.strip(), tail.strip()


def next_local_time(now: float, hour: int, minute: int) -> float:
    """The next HH:MM (server local time) strictly after ``now``."""
    local = datetime.fromtimestamp(now).astimezone()
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target.timestamp() <= now:
        target = (target + timedelta(days=1)).replace(hour=hour, minute=minute)
    return target.timestamp()


def check_time_suffix(text: str) -> None:
    """Refuse a text that ends like a time but is not a valid 24-hour HH:MM ("at 25:99")."""
    m = _AT_LIKE_RE.search(text)
    if m is not None and AT_RE.match(text) is None:
        raise ArgumentError(
            f"'at {m['time']}' is not a time: write HH:MM, 24-hour, 00:00 to 23:59 "
            "(e.g. at 18:30). To send a text that ends in numbers now, end it with a full stop."
        )


def check_area(area: str) -> None:
    if area in ("*", "all"):
        return
    if not any(ch.isalnum() for ch in area):  # JOIN drops punctuation: nobody can join it
        raise ArgumentError(f"'{area}' is not an area name; use * for everyone.")
    if len(area.split()) > MAX_AREA_WORDS or len(area) > MAX_AREA_CHARS:
        raise ArgumentError(
            f"An area is at most {MAX_AREA_WORDS} words and {MAX_AREA_CHARS} characters "
            "(what people text after JOIN); use * for everyone."
        )
    if any(not ch.isprintable() for ch in area):
        raise ArgumentError("The area name holds control characters; type it again.")


def parse_broadcast_id(arg: str) -> int:
    digits = arg.removeprefix("#")
    if not digits.isdecimal() or not digits.isascii() or len(digits) > MAX_ID_DIGITS:
        raise ArgumentError(
            f"'{arg}' is not a broadcast id: use the number from !broadcast list, "
            "e.g. !broadcast cancel 12."
        )
    return int(digits)


def parse_every_minutes(minutes: str) -> int:
    """The ``<min>`` of ``!broadcast every <min> …``: a whole number from 1 to a week."""
    if not minutes.isdecimal() or not minutes.isascii() or len(minutes) > 6:
        raise ArgumentError(
            f"Minutes must be a whole number from 1 to {MAX_EVERY_MIN}; got '{minutes}'."
        )
    if not 1 <= int(minutes) <= MAX_EVERY_MIN:
        raise ArgumentError(
            f"Minutes must be a whole number from 1 to {MAX_EVERY_MIN}; got {minutes}."
        )
    return int(minutes)
