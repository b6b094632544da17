"""The one matching normaliser (bot.textclean.normalize) and native-digit folding, which
triage, keyword commands and the head count read through."""

from __future__ import annotations

from bot import triage
from bot.headcount import people_count
from bot.textclean import ascii_digits, normalize


def test_ascii_digits_folds_every_native_script() -> None:
    assert ascii_digits("৩ জন, ४ लोग, ٥ افراد, ۶ لوگ, 7") == "3 জন, 4 लोग, 5 افراد, 6 لوگ, 7"
    assert people_count("৫ জন ছাদে") == 5


def test_normalize_is_the_matching_form_and_idempotent() -> None:
    samples = ["HELPPP!!", "\x1b[31mDrowning\x1b[0m", "can’t get out", "پانی ٣ دن", "ক‍্ষ ৩"]
    for text in samples:
        once = normalize(text)
        assert normalize(once) == once
    assert normalize("HELPPP") == "help"
    assert normalize("\x1b[31mDrowning") == "drowning"
    assert normalize("can’t  get\nout") == "cant get out"
    assert normalize("ك ٣") == "ک 3"
    assert triage.normalize is normalize  # triage reads through the same one
