"""Language of a message from its script: Bengali, Devanagari (Hindi), Arabic (Urdu), else English.

Script is all we can know without a model; romanised Bengali/Hindi/Urdu reads as "en", which is
also the safest reply language for a Latin-keyboard phone.
"""

from __future__ import annotations

import unicodedata

__all__ = ["RTL_LANGS", "detect_script_lang", "is_rtl"]

_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0980, 0x09FF, "bn"),
    (0x0900, 0x097F, "hi"),
    (0xA8E0, 0xA8FF, "hi"),  # Devanagari Extended
    (0x0600, 0x06FF, "ur"),
    (0x0750, 0x077F, "ur"),  # Arabic Supplement
    (0xFB50, 0xFDFF, "ur"),  # Arabic presentation forms A
    (0xFE70, 0xFEFF, "ur"),  # Arabic presentation forms B
)
RTL_LANGS = frozenset({"ur"})


def _script_of(ch: str) -> str:
    cp = ord(ch)
    for lo, hi, lang in _RANGES:
        if lo <= cp <= hi:
            return lang
    return "en"


MIN_NATIVE_LETTERS = 2  # one short word ("মা"), letters and vowel signs


def detect_script_lang(text: str) -> str:
    """ "bn", "hi", "ur" or "en": the native script with most letters when it holds at least a
    short word, else "en".

    Someone who writes any Bengali, Hindi or Urdu reads it: "আটকা পড়েছি, Kurigram Sadar Ulipur
    Road" is Bengali although Latin letters (the address) are the majority."""
    counts = {"bn": 0, "hi": 0, "ur": 0, "en": 0}
    for ch in text:
        # Marks count: Indic vowel signs are marks. Punctuation does not: Bengali borrows the
        # Devanagari danda (।), which would otherwise vote for Hindi.
        if unicodedata.category(ch)[0] in "LM":
            counts[_script_of(ch)] += 1
    best = max(("bn", "hi", "ur"), key=lambda lang: counts[lang])
    return best if counts[best] >= MIN_NATIVE_LETTERS else "en"


def is_rtl(lang: str) -> bool:
    """Right-to-left languages need no mirroring in SMS, but Matrix HTML wants dir="rtl"."""
    return lang in RTL_LANGS
