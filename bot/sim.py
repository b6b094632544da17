"""Simulated GSM network around libGammu's *dummy* phone, for drills, demos and tests.

Works on a dummy device directory without a running gateway:

* the network delivers an SMS: :func:`inject_sms` / :func:`inject_parts` write SMS-DELIVER parts
  into ``<device>/sms/1/<n>`` (the dummy's SIM inbox) in Gammu's SMS-backup format, atomically;
* the network shows what the gateway sent: the dummy keeps no copy of sent SMS, so whoever wires
  a dummy modem passes :func:`sent_recorder` to ``bot.transports.sms.Modem`` (``record_sent``),
  which records each accepted message under ``<device>/sent/`` with :func:`write_sent`;
  :func:`read_outbox` decodes those files the way a handset would see them
  (each part goes through a real SMS-SUBMIT PDU encode/decode, so Bengali sent with GSM-7 coding
  shows up as ``???`` here, exactly as on the handset).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import gammu

INBOX_FOLDER: Final = 1  # dummy: sms/1 = SIM inbox, 2 = SIM outbox, 3 = phone inbox, 4 = outbox
SENT_DIR: Final = "sent"
SENT_SUFFIX: Final = ".smsbackup"
DEFAULT_SMSC: Final = "+10000000000"

SmsPart = dict[str, Any]

_PDU_DEFAULTS: Final[Mapping[str, Any]] = {
    "Folder": 0,
    "Location": 0,
    "InboxFolder": 0,
    "Memory": "ME",
    "Class": -1,
    "State": "UnSent",
    "Type": "Submit",
}


def _aware(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _deliver_fields(number: str, when: datetime, smsc: str) -> SmsPart:
    return {
        "Number": number,
        "Type": "Deliver",
        "State": "UnRead",
        "Folder": INBOX_FOLDER,
        "InboxFolder": 1,
        "Memory": "SM",
        "SMSC": {"Location": 0, "Number": smsc},
        "DateTime": when,  # SMS-DELIVER: this is the SMSC timestamp (TP-SCTS)
        "SMSCDateTime": when,
    }


def build_parts(
    number: str, text: str, *, when: datetime | None = None, smsc: str = DEFAULT_SMSC
) -> list[SmsPart]:
    """SMS-DELIVER part(s) for ``text`` from ``number``; libGammu picks GSM-7/UCS-2 and splits."""
    stamp = _aware(when)
    parts: list[SmsPart] = gammu.EncodeSMS(
        {"Class": -1, "Entries": [{"ID": "ConcatenatedAutoTextLong", "Buffer": text}]}
    )
    for part in parts:
        part.update(_deliver_fields(number, stamp, smsc))
    return parts


def build_binary(
    number: str, data: bytes, *, when: datetime | None = None, smsc: str = DEFAULT_SMSC
) -> SmsPart:
    """One 8-bit data SMS (no text), as sent by some apps and SIM toolkits."""
    part: SmsPart = {"Class": -1, "Coding": "8bit", "Text": data}
    part.update(_deliver_fields(number, _aware(when), smsc))
    return part


def build_empty(number: str, *, when: datetime | None = None, smsc: str = DEFAULT_SMSC) -> SmsPart:
    """An SMS with no text at all (handsets do send these)."""
    part: SmsPart = {"Class": -1, "Coding": "Default_No_Compression", "Text": ""}
    part.update(_deliver_fields(number, _aware(when), smsc))
    return part


def build_status_report(
    number: str, *, reference: int = 0, when: datetime | None = None, smsc: str = DEFAULT_SMSC
) -> SmsPart:
    """A delivery report for a message we sent earlier (not a victim's message)."""
    part: SmsPart = {
        "Class": -1,
        "Coding": "Default_No_Compression",
        "Text": "Delivered",
        "MessageReference": reference,
        "DeliveryStatus": 0,
    }
    part.update(_deliver_fields(number, _aware(when), smsc))
    part["Type"] = "Status_Report"
    return part


def _fresh_temp(directory: Path) -> Path:
    # SaveSMSBackup appends to an existing file, so the name must not exist yet.
    return directory / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"


def inject_parts(device: Path, parts: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Store each part as its own SIM slot ``sms/1/<n>`` (lowest free n), atomically.

    The file is written under a temporary name and hard-linked into place, which fails instead of
    overwriting when a concurrent writer took the same slot; a reader never sees half a file."""
    box = device / "sms" / str(INBOX_FOLDER)
    box.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for part in parts:
        tmp = _fresh_temp(device)
        gammu.SaveSMSBackup(str(tmp), [dict(part)])
        try:
            for n in itertools.count(1):
                target = box / str(n)
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                written.append(target)
                break
        finally:
            tmp.unlink(missing_ok=True)
    return written


def inject_sms(
    device: Path,
    number: str,
    text: str,
    *,
    when: datetime | None = None,
    smsc: str = DEFAULT_SMSC,
) -> list[Path]:
    """The network delivers ``text`` from ``number`` to the modem at ``device`` (split if long)."""
    return inject_parts(device, build_parts(number, text, when=when, smsc=smsc))


def stored_files(device: Path, folders: Sequence[str] | None = None) -> list[Path]:
    """The SMS parts libGammu's dummy driver holds: one file ``sms/<folder>/<location>`` each
    (every folder unless ``folders`` names some), in no order; a writer's temporary files have
    other names. Called on every poll pass of a simulated modem: kept to one directory scan."""
    boxes = device / "sms"
    if not boxes.is_dir():
        return []
    return [
        Path(entry.path)
        for box in boxes.iterdir()
        if box.is_dir() and (folders is None or box.name in folders)
        for entry in os.scandir(box)
        if entry.name.isdigit()
    ]


def inbox_files(device: Path) -> list[Path]:
    """SMS still stored on the dummy phone's inboxes (SIM and phone memory), by folder and slot."""
    found = stored_files(device, ("1", "3"))
    return sorted(found, key=lambda p: (p.parent.name, int(p.name)))


def write_sent(device: Path, parts: Sequence[Mapping[str, Any]], *, key: str, when: float) -> Path:
    """Record one accepted outgoing message (all its encoded parts) in ``<device>/sent/``.

    File names sort by send time: ``<unix ns>-<sha256(key)[:16]>.smsbackup``. Atomic (temp file,
    then ``os.replace``). Blocking file I/O: call it from a worker thread."""
    out = device / SENT_DIR
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = out / f"{int(when * 1e9):020d}-{digest}{SENT_SUFFIX}"
    tmp = _fresh_temp(out)
    try:
        gammu.SaveSMSBackup(str(tmp), [dict(p) for p in parts])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def sent_recorder(device: Path) -> Callable[[Sequence[Mapping[str, Any]], str, float], Path]:
    """The ``record_sent`` hook for a dummy modem at ``device`` (runs on the modem's thread)."""

    def record(parts: Sequence[Mapping[str, Any]], key: str, when: float) -> Path:
        return write_sent(device, parts, key=key, when=when)

    return record


def wire_view(part: Mapping[str, Any], *, smsc: str = DEFAULT_SMSC) -> SmsPart:
    """Encode a submitted part to a real SMS-SUBMIT PDU and decode it again: what a handset gets."""
    full = dict(_PDU_DEFAULTS, **part)
    full["SMSC"] = {"Location": 0, "Number": smsc}
    decoded: SmsPart = gammu.DecodePDU(gammu.EncodePDU(full), SMSC=True)
    if isinstance(decoded.get("Text"), str) and str(decoded.get("Coding")).startswith("Default"):
        # DecodePDU sizes GSM-7 text in septets: each escaped char ([ ] { } ~ € …) leaves a
        # trailing NUL that no handset shows.
        decoded["Text"] = decoded["Text"].rstrip("\x00")
    return decoded


def group_text(group: Sequence[Mapping[str, Any]]) -> str:
    """Join the text of one linked group (all parts present) like a handset does."""
    decoded = gammu.DecodeSMS([dict(p) for p in group])
    if decoded is None:
        return "".join(str(p["Text"]) for p in group if isinstance(p["Text"], str))
    return "".join(e["Buffer"] or "" for e in decoded["Entries"])


def read_outbox(devices: Mapping[str, Path]) -> list[dict[str, Any]]:
    """Everything the modems sent, as a handset would read it, sorted by send time.

    ``devices`` maps modem name to its dummy device directory. Each entry:
    ``{"to", "text", "parts", "coding", "modem", "time", "path"}`` (``time`` in unix seconds)."""
    result: list[dict[str, Any]] = []
    for modem, device in devices.items():
        out = device / SENT_DIR
        if not out.is_dir():
            continue
        for path in sorted(out.glob(f"*{SENT_SUFFIX}")):
            stored = gammu.ReadSMSBackup(str(path))
            wire = [wire_view(p) for p in stored]
            # One file = one message: link inside the file only (8-bit IDs repeat across messages).
            for group in gammu.LinkSMS([[p] for p in wire]):
                result.append(
                    {
                        "to": group[0]["Number"],
                        "text": group_text(group),
                        "parts": len(group),
                        "coding": group[0]["Coding"],
                        "modem": modem,
                        "time": int(path.name.split("-", 1)[0]) / 1e9,
                        "path": str(path),
                    }
                )
    result.sort(key=lambda m: (m["time"], m["modem"]))
    return result


def clear_outbox(device: Path) -> None:
    """Forget what was sent (drills that reuse a device directory)."""
    out = device / SENT_DIR
    if out.is_dir():
        for path in out.iterdir():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
