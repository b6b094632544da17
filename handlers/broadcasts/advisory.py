"""What an advisory says: the SMS (who it is from, within the segment budget), the Matrix text,
one outbox row per recipient, and the remarks a coordinator's reply carries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from bot import sms_text
from bot.models import Channel, Lane, Outbound
from bot.store.broadcasts import Broadcast
from bot.store.subscriptions import Subscriber

ADVISORY_PREFIX = "Lifeline advisory: "


def hhmm(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().strftime("%H:%M")


def area_label(area: str) -> str:
    return "everyone" if area in ("*", "all") else area


def advisory_sms(text: str, budget: int) -> str:
    """The SMS a subscriber gets: who it is from, then the text, within ``budget`` segments."""
    return sms_text.fit(ADVISORY_PREFIX + text, budget)


def advisory_texts(b: Broadcast, budget: int) -> dict[Channel, str]:
    return {
        Channel.SMS: advisory_sms(b.text, budget),
        Channel.MATRIX: f"Advisory for {area_label(b.area)}: {b.text}",
    }


def advisory_rows(
    b: Broadcast,
    fire: str,
    subscribers: Iterable[Subscriber],
    texts: Mapping[Channel, str],
    stopped: set[tuple[Channel, str]],
) -> Iterator[Outbound]:
    """One row per subscriber who has not opted out; the key makes a re-fire send nothing twice."""
    for s in subscribers:
        if (s.channel, s.peer) in stopped:
            continue
        yield Outbound(
            channel=s.channel,
            peer=s.peer,
            conversation=s.conversation,
            text=texts[s.channel],
            idem_key=f"adv:{b.id}:{fire}:{s.channel}:{s.peer}",
            lane=Lane.BROADCAST,
            meta={"broadcast_id": b.id, "fire": fire},
        )


def shortened_note(text: str, budget: int) -> str:
    """The reply's " (text shortened to N SMS)" when the advisory does not fit whole."""
    fitted = advisory_sms(text, budget)
    whole = sms_text.gsm_fold(sms_text.to_plain(ADVISORY_PREFIX + text))
    return f" (text shortened to {budget} SMS)" if fitted != whole else ""


def unknown_area_note(area: str, counts: Mapping[str, int], *, quoted: bool) -> str:
    """A warning when nobody has joined ``area`` (empty when someone has, or for everyone)."""
    if area == "*" or area in counts:
        return ""
    known = ", ".join(f"{a} ({n})" for a, n in list(counts.items())[:8]) or "none"
    note = f" — WARNING: nobody has joined '{area}' (known areas: {known})"
    if not quoted:
        note += '; quote an area of several words: !advise "char bhadrasan" …'
    return note
