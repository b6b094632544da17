"""SMS text budget and shaping: GSM-7 / UCS-2 segments, Markdown → plain text, truncation.

Why it matters: a reply sent as GSM-7 while holding a non-GSM character arrives as "???", and a
reply longer than its budget gets cut by the operator or costs extra parts. Everything here is
pure so the outbox can call it anywhere.

Segment rules (GSM 03.40, matched against libGammu's ``EncodeSMS`` in the tests):

* GSM-7: 160 septets in one SMS, 153 per part when concatenated; extension-table characters
  (``^{}\\[~]|€`` and form feed) take 2 septets and are never split across parts.
* UCS-2: 70 UTF-16 code units in one SMS, 67 per part; a character outside the BMP (emoji) takes
  2 units and its surrogate pair is never split across parts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Literal

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "encoding",
    "fit",
    "gsm_fold",
    "is_gsm7",
    "segments",
    "to_plain",
    "units",
]

# GSM 03.38 default alphabet. 0x1B (escape) is left out: it is not a character a text may hold.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM7_SINGLE, _GSM7_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


def is_gsm7(text: str) -> bool:
    """True when every character exists in the GSM-7 default alphabet or its extension."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def encoding(text: str) -> Literal["gsm7", "ucs2"]:
    """The coding a modem must use; anything else turns non-GSM text into "???"."""
    return "gsm7" if is_gsm7(text) else "ucs2"


def _unit_sizes(text: str, gsm: bool) -> list[int]:
    if gsm:
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def units(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) the text occupies."""
    return sum(_unit_sizes(text, is_gsm7(text)))


def segments(text: str) -> int:
    """Number of SMS parts needed to send ``text``; 1 for the empty text, like a modem."""
    gsm = is_gsm7(text)
    sizes = _unit_sizes(text, gsm)
    single, part = (_GSM7_SINGLE, _GSM7_PART) if gsm else (_UCS2_SINGLE, _UCS2_PART)
    if sum(sizes) <= single:
        return 1
    # Greedy packing with atomic characters: an escape pair or a surrogate pair that would
    # straddle a part boundary moves whole into the next part (what libGammu does).
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count += 1
            used = 0
        used += size
    return count


# --- plain text -------------------------------------------------------------------------------

_ZWJ, _ZWNJ = "\u200d", "\u200c"
_FENCE = re.compile(r"^\s*(```|~~~).*$", re.MULTILINE)
_HRULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(\s+#+)?\s*$", re.MULTILINE)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*[-*+•‣◦▪●]\s+", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^>\s]+)>")
_CODE = re.compile(r"`+([^`]+?)`+")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STAR_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
# Underscore italics only at word edges, so snake_case and file_names survive.
_UNDER_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_SPACES = re.compile(r"[^\S\n]+")


def _keep_joiner(prev: str) -> bool:
    # ZWJ/ZWNJ shape Bengali, Devanagari and Arabic-script words (e.g. র‍্যা); elsewhere they are
    # invisible noise (or glue emoji sequences we do not need).
    if not prev or prev.isascii():
        return False
    return unicodedata.category(prev)[0] in "LM"


def _strip_invisible(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs"):
            # Controls (incl. \r, \f) and lone surrogates cannot be sent and break encoders.
            out.append(" " if cat == "Cc" else "")
            continue
        if cat == "Cf" or ch in "\u2028\u2029":
            if ch in (_ZWJ, _ZWNJ) and _keep_joiner(out[-1] if out else ""):
                out.append(ch)
            elif ch in "\u2028\u2029":
                out.append("\n")
            continue
        out.append(ch)
    return "".join(out)


def _table_row(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        cells = [c.strip() for c in stripped[1:-1].split("|")]
        return ", ".join(c for c in cells if c)
    return line


def to_plain(text: str) -> str:
    """Model output → SMS plain text: no Markdown, no invisible characters, NFC, tight spacing."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_invisible(text)
    text = _FENCE.sub("", text)
    text = _TABLE_RULE.sub("", text)
    text = _HRULE.sub("", text)
    text = "\n".join(_table_row(line) for line in text.split("\n"))
    text = _HEADING.sub(r"\1", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("- ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _STAR_ITALIC.sub(r"\1", text)
    text = _UNDER_ITALIC.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    # Blank lines cost two characters each and carry nothing on a phone screen.
    lines = [line.strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


# --- GSM folding ------------------------------------------------------------------------------

_FOLD: dict[str, str] = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "`": "'",
    "´": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "«": '"',
    "»": '"',
    "‹": "<",
    "›": ">",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "―": "-",
    "−": "-",
    "…": "...",
    "•": "-",
    "·": "-",
    "‣": "-",
    "◦": "-",
    "▪": "-",
    "●": "-",
    "×": "x",
    "÷": "/",
    "⁄": "/",
    "₹": "Rs",
    "৳": "Tk",
    "©": "(c)",
    "®": "(R)",
    "™": "TM",
    "°": " deg",
    "½": "1/2",
    "¼": "1/4",
    "¾": "3/4",
    "→": "->",
    "←": "<-",
    "≥": ">=",
    "≤": "<=",
    "≈": "~",
    "\t": " ",
}
# Pictographs a model likes to sprinkle in; on an English SMS each one halves the capacity.
_DROPPABLE_CATEGORIES = frozenset({"So", "Sk", "Mn", "Me", "Cf"})


def _fold_char(ch: str) -> str:
    if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
        return ch
    if ch in _FOLD:
        return _FOLD[ch]
    if unicodedata.category(ch) == "Zs":
        return " "
    # Accented Latin letters and ligatures: keep the GSM base letters (ç → c, ﬁ → fi).
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and is_gsm7(base):
        return base
    if unicodedata.category(ch) in _DROPPABLE_CATEGORIES:
        return ""
    return ch


def gsm_fold(text: str) -> str:
    """Replace typographic characters by GSM-7 ones when that makes the whole text GSM-7.

    All or nothing: if one character cannot be folded (Bengali, Devanagari, Arabic script, CJK…)
    the text is returned unchanged, so Indic and Urdu replies stay intact in UCS-2.
    """
    if is_gsm7(text):
        return text
    folded = "".join(_fold_char(ch) for ch in text)
    if not is_gsm7(folded):
        return text
    if folded != text:
        # Dropped pictographs leave doubled or dangling spaces behind.
        folded = "\n".join(_SPACES.sub(" ", line).strip() for line in folded.split("\n"))
    return folded


# --- fitting into a budget --------------------------------------------------------------------

_SENTENCE_END = frozenset(".!?।॥۔؟\n")
# Emoji skin-tone modifiers attach to the previous pictograph like a combining mark.
_MODIFIERS = frozenset(chr(c) for c in range(0x1F3FB, 0x1F400))


def _cut_ok(text: str, i: int) -> bool:
    """May ``text`` be cut before index ``i`` without breaking a grapheme or an Indic conjunct?"""
    if i <= 0 or i >= len(text):
        return True
    nxt, prev = text[i], text[i - 1]
    if unicodedata.category(nxt)[0] == "M" or nxt in _MODIFIERS or nxt in (_ZWJ, _ZWNJ):
        return False
    # After a virama/hasanta (combining class 9) or a joiner the next consonant is part of
    # the same conjunct; cutting there leaves a half-letter.
    if prev in (_ZWJ, _ZWNJ) or unicodedata.combining(prev) == 9:
        return False
    return not ("\ud800" <= prev <= "\udbff")


def _ellipsis(head: str, suffix: str) -> str:
    # "…" would force UCS-2 on a GSM-7 text; in UCS-2 it is cheaper than three dots.
    return "..." if is_gsm7(head + suffix) else "…"


def _fits(head: str, tail: str, suffix: str, budget: int) -> bool:
    return segments(head + tail + suffix) <= budget


def fit(text: str, budget_segments: int, *, suffix: str = "") -> str:
    """Shape ``text`` into at most ``budget_segments`` SMS parts, ``suffix`` kept verbatim last.

    The text is made plain and GSM-folded, then cut at a sentence end when one is near the limit,
    else at a word boundary with an ellipsis, else at a grapheme boundary with an ellipsis. If the
    suffix alone does not fit (a misuse), the suffix itself is fitted so the guarantee holds.
    """
    if budget_segments < 1:
        raise ValueError("budget_segments must be >= 1")
    body = gsm_fold(to_plain(text))
    if segments(body + suffix) <= budget_segments:
        return body + suffix
    if segments(suffix) > budget_segments:
        return fit(suffix, budget_segments)

    # Longest grapheme-safe prefix that fits with an ellipsis. Segments grow monotonically with
    # the prefix (and a prefix only ever turns GSM-7 → UCS-2 once), so binary search is exact.
    lo, hi = 0, len(body)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        head = body[:mid]
        if _fits(head, _ellipsis(head, suffix), suffix, budget_segments):
            lo = mid
        else:
            hi = mid - 1
    limit = lo
    while limit > 0 and not _cut_ok(body, limit):
        limit -= 1

    for candidate in _candidates(body, limit, suffix):
        # Stripping can change a prefix's coding (UCS-2 → GSM-7 and with it the ellipsis), so
        # every candidate is re-measured rather than trusted.
        if segments(candidate) <= budget_segments:
            return candidate
    return suffix


def _candidates(body: str, limit: int, suffix: str) -> Iterator[str]:
    # Best first; lazy because the last resort walks back one grapheme at a time.
    # A sentence end in the last 40 % of the room reads better than a mid-sentence cut.
    for i in range(limit, int(limit * 0.6), -1):
        ch = body[i - 1]
        boundary = i == len(body) or body[i].isspace() or ch == "\n"
        if ch in _SENTENCE_END and boundary and _cut_ok(body, i):
            head = body[:i].rstrip()
            if head:
                yield head + suffix
                break
    for i in range(limit, int(limit * 0.7), -1):
        if (i == len(body) or body[i].isspace()) and _cut_ok(body, i):
            head = body[:i].rstrip(" \n,;:-")
            if head:
                yield head + _ellipsis(head, suffix) + suffix
                break
    for i in range(limit, 0, -1):
        if _cut_ok(body, i):
            head = body[:i].rstrip()
            if head:
                yield head + _ellipsis(head, suffix) + suffix
