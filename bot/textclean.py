"""The one text cleaner: what the public typed, made safe to show (and protocol text, to index),
and its matching form (``normalize``: what triage and keyword commands compare).

An SMS can carry terminal escape sequences (``ESC[2J`` clears the operator's screen, ``ESC]8;…``
plants a link), other C0/C1 controls (``\\r`` overwrites a line) and bidi overrides or isolates
(U+202E turns "txt.exe" into "exe.txt"). Stored text stays exactly as received; every staff-facing
rendering boundary (the CLI tables, every Matrix post) shows ``clean_text(text)`` instead.

Kept: ``\\n`` and ``\\t``, and ZWJ/ZWNJ, which Bengali, Hindi and Urdu spelling needs.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ascii_digits",
    "clean_text",
    "drop_sequences",
    "escape_unsafe",
    "is_unsafe",
    "normalize",
]

_KEEP = frozenset("\n\t\u200c\u200d")
# Whole escape sequences, so no "[31m" debris is left: CSI (ESC [ or C1 0x9B … final byte) and
# terminated OSC / DCS / APC / PM strings (up to BEL or ST; an unterminated one keeps its text,
# so nothing can be hidden behind a stray introducer). Any other control is dropped on its own.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
)


def is_unsafe(ch: str) -> bool:
    """A control (C0/C1) or format character (bidi overrides, isolates, marks…) other than
    newline, tab and the joiners: invisible on screen, but it can move, hide or reorder text."""
    return ch not in _KEEP and unicodedata.category(ch) in ("Cc", "Cf")


def drop_sequences(text: str, repl: str = "") -> str:
    """Terminal escape sequences replaced whole (triage uses it too: "ESC[31mdrowning" is
    "drowning", not the unknown word "31mdrowning")."""
    return _SEQUENCE.sub(repl, text)


def clean_text(text: str) -> str:
    """NFC, ``\\r\\n``/``\\r`` → ``\\n``, escape sequences removed, unsafe characters dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", drop_sequences(text))
    return "".join(ch for ch in text if not is_unsafe(ch))


def _json_escape(ch: str) -> str:
    units = ch.encode("utf-16-be")  # a tag character (U+E00xx) is a surrogate pair
    return "".join(f"\\u{int.from_bytes(units[i : i + 2]):04x}" for i in range(0, len(units), 2))


def escape_unsafe(text: str) -> str:
    """Unsafe characters as JSON ``\\uXXXX`` escapes: JSON output decodes back unchanged."""
    return "".join(_json_escape(ch) if is_unsafe(ch) else ch for ch in text)


def ascii_digits(text: str) -> str:
    """Native decimal digits (Bengali, Devanagari, Arabic-Indic …) as ASCII digits."""
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


_STRIP_CHARS = dict.fromkeys(
    map(
        ord,
        "'`´‘’ʼ"  # apostrophes: "can't" == "cant"
        "\u093c\u0901\u0902"  # Devanagari nukta, chandrabindu, anusvara (often omitted)
        "\u09bc\u0981"  # Bengali nukta, chandrabindu
        "\u0640\u0670",  # Arabic tatweel, superscript alef
    )
)
_STRIP_CHARS.update(dict.fromkeys(range(0x064B, 0x0660)))  # Arabic harakat
_STRIP_CHARS.update(dict.fromkeys(range(0xFE00, 0xFE10)))  # variation selectors ("❤️" is a symbol)
_MAP_CHARS = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh → Farsi/Urdu yeh
        "\u0649": "\u06cc",  # alef maksura → yeh
        "\u0643": "\u06a9",  # Arabic kaf → keheh
        "\u0647": "\u06c1",  # heh → heh goal (Urdu)
        "\u0629": "\u06c1",  # teh marbuta → heh goal
        "\u0623": "\u0627",  # alef with hamza above → alef
        "\u0625": "\u0627",  # alef with hamza below → alef
    }
)
_REPEAT = re.compile(r"([^\d\s])\1+")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The matching form of a text, for comparing what people typed with a vocabulary (both
    sides go through it): terminal escape sequences dropped, NFC, case-folded, invisible
    characters, apostrophes, Indic nukta/chandrabindu (and Devanagari anusvara) and Arabic
    diacritics dropped, variant Arabic letters unified, native digits as ASCII, runs of a
    repeated letter collapsed ("helppp" → "help"), whitespace squeezed. Stable and idempotent."""
    text = unicodedata.normalize("NFC", drop_sequences(text, " ")).casefold()
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs")
    )
    text = text.translate(_STRIP_CHARS).translate(_MAP_CHARS)
    text = ascii_digits(text)  # so "৩ দিন" and "3 din" read alike
    text = _REPEAT.sub(r"\1", text)
    return _SPACE.sub(" ", text).strip()
