"""How many people a message speaks of ("4 people on the roof", "৫ জন", "family of 6"): a
deterministic first guess for coordinators before the model (or when it is down). 0 = unknown."""

from __future__ import annotations

import re
import unicodedata

from bot.textclean import ascii_digits

MAX_PEOPLE = 5000

_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    # Romanised Bengali/Hindi/Urdu, minus words that are also English or place names
    # ("do", "at", "tin", "sat", "char" as in Char Bhadrasan).
    "ek": 1, "dui": 2, "teen": 3, "paanch": 5, "panch": 5, "pach": 5, "chhe": 6, "chhoy": 6,
    "saat": 7, "aath": 8, "das": 10, "dosh": 10,
}  # fmt: skip
_NUM = r"(\d{1,4}|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")"
_PEOPLE = (
    r"(?:people|persons?|of us|family members|members|men|women|adults|children|kids|lives|"
    r"jon|jan|jon?er|lok|log|logon|manush|afrad|"
    r"জন|জনের|মানুষ|লোক|"
    r"लोग|लोगों|जन|व्यक्ति|सदस्य|"
    r"لوگ|لوگوں|افراد|آدمی|بندے)"
)
_PATTERNS = (
    re.compile(rf"(?<!\w){_NUM}\s*(?:\w+\s+)?{_PEOPLE}(?!\w)"),  # "4 people", "5 old people"
    re.compile(rf"(?:family|group|we are|we're|amra|hum)\s+(?:of\s+)?{_NUM}(?!\w)"),
)


def people_count(text: str) -> int:
    """The largest head count the text states (capped), or 0 when it states none."""
    norm = ascii_digits(unicodedata.normalize("NFC", text).casefold())  # "৫ জন" is "5 জন"
    best = 0
    for pattern in _PATTERNS:
        for m in pattern.finditer(norm):
            raw = m.group(1)
            n = int(raw) if raw.isdigit() else _WORDS.get(raw, 0)
            best = max(best, min(n, MAX_PEOPLE))
    return best
