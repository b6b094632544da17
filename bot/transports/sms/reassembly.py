"""Multipart reassembly without I/O: the linked parts of one SIM read pass in, a plan out.

The modem worker reads and links the stored parts (gammu, on its thread), asks ``Reassembler.plan``
what the pass means — which messages to deliver (complete, or partial once ``timeout_s`` has passed
since their first part was seen), which SIM slots to delete after the delivery was committed, what
keeps waiting — and calls ``Reassembler.delivered`` once those slots are deleted. The clock is a
parameter; nothing here touches the modem, the store or the logs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from bot.models import Channel, Facts, Inbound
from bot.transports.sms.codec import MAX_PARTS, SmsPart, dedup_key, smsc_iso

PARTIAL_MARKER: Final = "[…]"
REDELIVERY_WINDOW_S: Final = 24 * 3600.0  # parts re-delivered later than this are new messages

GroupKey = tuple[str, int, int, int]  # sender, 8-bit id, 16-bit id, number of parts
Location = tuple[int, int]  # SIM folder, slot


def _udh_int(part: SmsPart, field_name: str, default: int = -1) -> int:
    udh = part.get("UDH") or {}
    return int(udh.get(field_name, default) or default)


@dataclass(slots=True)
class Group:
    """One LinkSMS group as read in the worker thread."""

    parts: list[SmsPart]
    decoded: str | None  # DecodeSMS text when available

    @property
    def first(self) -> SmsPart:
        return self.parts[0]

    @property
    def all_parts(self) -> int:
        n = _udh_int(self.first, "AllParts")
        return n if n > 1 else 1

    @property
    def part_numbers(self) -> dict[int, SmsPart]:
        """PartNumber → part (first copy wins; duplicates from a double receive are dropped)."""
        found: dict[int, SmsPart] = {}
        for p in self.parts:
            num = _udh_int(p, "PartNumber")
            found.setdefault(num if num > 0 else 1, p)
        return found

    @property
    def key(self) -> GroupKey:
        udh = self.first.get("UDH") or {}
        return (
            str(self.first.get("Number", "")),
            int(udh.get("ID8bit", -1)),
            int(udh.get("ID16bit", -1)),
            self.all_parts,
        )

    @property
    def is_message(self) -> bool:
        """SMS-DELIVER; status reports and the like are not messages from a person."""
        return self.first.get("Type") == "Deliver"

    @property
    def complete(self) -> bool:
        return set(range(1, self.all_parts + 1)) <= set(self.part_numbers)

    @property
    def locations(self) -> list[Location]:
        return [(int(p["Folder"]), int(p["Location"])) for p in self.parts]

    @property
    def texts(self) -> dict[int, Any]:
        return {n: p.get("Text") for n, p in self.part_numbers.items()}


def merge_incomplete(groups: Iterable[Group]) -> list[Group]:
    """LinkSMS leaves non-adjacent parts (1 and 3 of 3) in separate groups: join them by key."""
    merged: list[Group] = []
    by_key: dict[GroupKey, Group] = {}
    for g in groups:
        if not g.is_message or g.complete or g.all_parts <= 1:
            merged.append(g)
            continue
        into = by_key.get(g.key)
        if into is not None and not set(into.part_numbers) & set(g.part_numbers):
            into.parts.extend(g.parts)
            into.parts.sort(key=lambda p: _udh_int(p, "PartNumber", 0))
            into.decoded = None  # DecodeSMS saw only a piece: join part texts instead
            continue
        by_key.setdefault(g.key, g)
        merged.append(g)
    return merged


def arrival_order(g: Group) -> tuple[float, Location]:
    """Sort key of a group within one read pass: SMSC time, then SIM slot.

    The SIM stores a new SMS in the lowest free slot, so after deletes a later message can sit
    before an earlier one; reading in slot order would store one sender's texts out of order."""
    numbered = g.part_numbers
    stamp = numbered[min(numbered)].get("DateTime")
    when = stamp.timestamp() if isinstance(stamp, datetime) else math.inf
    return when, min(g.locations)


class Verdict(StrEnum):
    COMPLETE = "complete"  # deliver
    PARTIAL = "partial"  # deliver with the missing parts marked: waited long enough
    OVERSIZED = "oversized"  # deliver as partial at once: claims more than MAX_PARTS parts
    WAITING = "waiting"  # keep on the SIM, more parts may come
    DUPLICATE = "duplicate"  # a part already delivered: delete
    NOT_A_MESSAGE = "not_a_message"  # status report etc.: delete

    @property
    def delivers(self) -> bool:
        return self in (Verdict.COMPLETE, Verdict.PARTIAL, Verdict.OVERSIZED)


@dataclass(frozen=True, slots=True)
class Decision:
    group: Group
    verdict: Verdict


@dataclass(slots=True)
class Plan:
    """What one read pass means, in arrival order."""

    decisions: list[Decision] = field(default_factory=list)
    delete: list[Location] = field(default_factory=list)  # after the delivery is committed
    delivered: dict[GroupKey, dict[int, Any]] = field(default_factory=dict)  # key → part texts
    pending: int = 0  # parts left waiting on the SIM

    @property
    def deliver(self) -> list[Decision]:
        return [d for d in self.decisions if d.verdict.delivers]


class Reassembler:
    """Remembers, in memory, when each incomplete group was first seen and which parts were
    recently delivered (a part the network delivers again later is a duplicate, not a new
    partial message; kept ``REDELIVERY_WINDOW_S``)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._first_seen: dict[GroupKey, float] = {}
        self._recent: dict[GroupKey, tuple[float, dict[int, Any]]] = {}

    def plan(self, groups: list[Group], now: float) -> Plan:
        """Decide every group of one pass; starts the wait clock of new incomplete groups."""
        out = Plan()
        complete_texts: dict[GroupKey, dict[int, Any]] = {}
        for g in groups:
            if g.is_message and g.complete:
                complete_texts.setdefault(g.key, {}).update(g.texts)
        seen: set[GroupKey] = set()
        for g in sorted(merge_incomplete(groups), key=arrival_order):
            verdict = self._verdict(g, now, complete_texts)
            out.decisions.append(Decision(g, verdict))
            if g.is_message:
                seen.add(g.key)
            if verdict is Verdict.WAITING:
                out.pending += len(g.parts)
                continue
            out.delete.extend(g.locations)
            if verdict.delivers:
                out.delivered[g.key] = g.texts
        for key in list(self._first_seen):
            if key not in seen:  # gone from the SIM (deleted elsewhere): forget it
                del self._first_seen[key]
        return out

    def _verdict(
        self, g: Group, now: float, complete_texts: dict[GroupKey, dict[int, Any]]
    ) -> Verdict:
        if not g.is_message:
            return Verdict.NOT_A_MESSAGE
        if g.complete:
            return Verdict.COMPLETE
        earlier = self._recent.get(g.key)
        twin = complete_texts.get(g.key) or (earlier[1] if earlier else None)
        if twin is not None and all(twin.get(n) == t for n, t in g.texts.items()):
            return Verdict.DUPLICATE
        seen_at = self._first_seen.setdefault(g.key, now)
        if g.all_parts > MAX_PARTS:
            return Verdict.OVERSIZED
        if now - seen_at < self.timeout_s:
            return Verdict.WAITING
        return Verdict.PARTIAL

    def delivered(self, plan: Plan, now: float) -> None:
        """The plan's messages are committed and their slots deleted."""
        for key, texts in plan.delivered.items():
            self._first_seen.pop(key, None)
            self._recent[key] = (now, texts)
        for key in [k for k, (at, _) in self._recent.items() if now - at > REDELIVERY_WINDOW_S]:
            del self._recent[key]


def to_inbound(g: Group, *, partial: bool, modem: str, received_at: float) -> Inbound:
    """The message one (complete or partial) group carries; missing parts become markers.
    What routing decides on goes into typed ``Facts``; ``meta`` keeps the diagnostics."""
    numbered = g.part_numbers
    first = numbered[min(numbered)]
    number = str(first.get("Number", ""))
    smsc_time = smsc_iso(first)
    meta: dict[str, Any] = {
        "parts": len(numbered),
        "coding": str(first.get("Coding", "")),
        "smsc_time": smsc_time,
    }
    binary = empty = False
    if any(p.get("Coding") == "8bit" for p in g.parts):
        payload = b"".join(p["Text"] for p in numbered.values() if isinstance(p.get("Text"), bytes))
        text = ""
        hash_source = "8bit:" + payload.hex()
        binary = True
        meta["bytes"] = len(payload)
    else:
        if partial:
            text = _partial_text(g)
            meta["expected_parts"] = g.all_parts
            meta["missing_parts"] = [
                n for n in range(1, min(g.all_parts, MAX_PARTS) + 1) if n not in numbered
            ]
        elif g.decoded is not None:
            text = g.decoded
        else:
            text = "".join(str(numbered[n].get("Text") or "") for n in sorted(numbered))
        # Real modems: gammu sizes GSM-7 text in septets, so escaped chars leave NULs.
        text = text.replace("\x00", "")
        hash_source = text
        empty = not text.strip()
    return Inbound(
        channel=Channel.SMS,
        peer=number,
        conversation=number,
        text=text,
        dedup_key=dedup_key(number, smsc_time, hash_source),
        received_at=received_at,
        meta=meta,
        facts=Facts(modem=modem, binary=binary, empty=empty, partial=partial and not binary),
    )


def _partial_text(g: Group) -> str:
    numbered = g.part_numbers
    last = max(numbered)
    pieces = [
        str(numbered[n].get("Text") or "") if n in numbered else PARTIAL_MARKER
        for n in range(1, min(g.all_parts, last) + 1)
    ]
    if g.all_parts > last:
        pieces.append(PARTIAL_MARKER)
    return "".join(pieces)
