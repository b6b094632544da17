"""Segment counting (cross-checked against libGammu), plain-text shaping, folding and fitting."""

from __future__ import annotations

import unicodedata

import gammu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.sms_text import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    encoding,
    fit,
    gsm_fold,
    is_gsm7,
    segments,
    to_plain,
    units,
)


def gammu_parts(text: str) -> int:
    """What a real modem would send: libGammu's own encoder."""
    parts = gammu.EncodeSMS(
        {
            "Class": -1,
            "Unicode": not is_gsm7(text),
            "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": text}],
        }
    )
    return len(parts)


GSM_ALPHABET = "".join(sorted(GSM7_BASIC | GSM7_EXTENSION))
BENGALI = "অআইউএকখগঘচছজঝটঠডঢণতথদধনপফবভমযরলশষসহড়ঢ়য়ৎংঃঁািীুূৃেৈোৌ্। "
DEVANAGARI = "अआइईउएकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह़ािीुूृेैोौ्ंँः। "
ARABIC = "ابپتٹثجچحخدڈذرڑزژسشصضطظعغفقکگلمنوہھیےۓءآأؤئ۔،؟ ً ٌ ٍ َ ُ ِ ّ ْ"
EMOJI = "😀🚨🆘⚠️👍🏽🌊🏠👨‍👩‍👧🇧🇩"
MIXED = GSM_ALPHABET + BENGALI + DEVANAGARI + ARABIC + EMOJI + "’“”–—…•× €"

gsm_text = st.text(alphabet=GSM_ALPHABET, max_size=800)
mixed_text = st.text(alphabet=MIXED, max_size=600)
# Anything Python can hold except lone surrogates, which no encoder accepts.
any_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=400,
)


# --- charset and encoding ---------------------------------------------------------------------


def test_gsm_charset_sizes() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions minus the escape
    assert set("^{}\\[~]|€") <= GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Move to higher ground now.", "gsm7"),
        ("Price: €5 {ok} [x] ~ | ^ \\", "gsm7"),
        ("Don’t wait", "ucs2"),  # curly apostrophe
        ("ছাদে থাকুন", "ucs2"),
        ("छत पर रहें", "ucs2"),
        ("چھت پر رہیں", "ucs2"),
        ("ok 👍", "ucs2"),
        ("ç", "ucs2"),  # GSM has only the capital Ç
        ("", "gsm7"),
    ],
)
def test_encoding(text: str, expected: str) -> None:
    assert encoding(text) == expected


# --- segments: boundaries and libGammu agreement ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 159 + "^", 2),  # 161 septets
        ("a" * 152 + "^" + "a" * 152, 3),  # the escape pair cannot straddle parts
        ("অ" * 70, 1),
        ("অ" * 71, 2),
        ("অ" * 134, 2),
        ("অ" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # the surrogate pair cannot straddle parts
        ("ছাদে থাকুন। " * 40, 8),  # 480 units
    ],
)
def test_segments_boundaries(text: str, expected: int) -> None:
    assert segments(text) == expected
    assert gammu_parts(text) == expected


def test_units_counts_extension_and_surrogates() -> None:
    assert units("a^") == 3
    assert units("অ😀") == 3


def test_segments_match_gammu_on_realistic_replies() -> None:
    samples = [
        "Stay on the roof. A boat team is on the way. Keep your phone on. [LF-4821]",
        "Do not touch wires in water; switch off the mains {if safe}. " * 6,
        "বাড়ির ছাদে উঠুন। পানিতে নামবেন না। উদ্ধারকারী দল আসছে। " * 5,
        "छत पर रहें। बिजली के तारों से दूर रहें। नाव भेजी जा रही है। " * 5,
        "چھت پر رہیں۔ پانی میں نہ اتریں۔ کشتی آ رہی ہے۔ " * 5,
        "Help is coming 🚨🆘 stay put " * 9,
    ]
    for text in samples:
        assert segments(text) == gammu_parts(text), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gsm_text)
def test_segments_match_gammu_gsm(text: str) -> None:
    assert segments(text) == gammu_parts(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_text)
def test_segments_match_gammu_mixed(text: str) -> None:
    assert segments(text) == gammu_parts(text)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_segments_match_gammu_any_unicode(text: str) -> None:
    assert segments(text) == gammu_parts(text)


# --- to_plain ---------------------------------------------------------------------------------


def test_to_plain_strips_markdown() -> None:
    md = (
        "## Safety steps ##\n\n"
        "**Move** to _higher_ ground *now*.\n\n\n"
        "* Take [the map](https://example.org/map) and `ORS`\n"
        "- Keep ![photo](x.png) dry\n"
        "+ Call __coordinator__\n"
        "> quoted line\n"
        "---\n"
        "```\nboil water\n```\n"
    )
    assert to_plain(md) == (
        "Safety steps\n"
        "Move to higher ground now.\n"
        "- Take the map and ORS\n"
        "- Keep photo dry\n"
        "- Call coordinator\n"
        "quoted line\n"
        "boil water"
    )


def test_to_plain_keeps_snake_case_and_arithmetic() -> None:
    assert to_plain("file_name_here and 2 * 3 * 4") == "file_name_here and 2 * 3 * 4"


def test_to_plain_collapses_whitespace_and_removes_invisibles() -> None:
    text = "Stay\u200b  calm\t\x07now\u00ad\r\n\r\n\n  go\ufeff up  "
    assert to_plain(text) == "Stay calm now\ngo up"


def test_to_plain_nfc_and_keeps_indic_joiners() -> None:
    decomposed = "e\u0301"  # é decomposed
    assert to_plain(decomposed) == "\u00e9"
    bengali_ya_phala = "র\u200d্যাব"  # ZWJ shapes র‍্য; it belongs to the word
    assert to_plain(bengali_ya_phala) == bengali_ya_phala
    assert to_plain("ok\u200dgo") == "okgo"


def test_to_plain_table_rows() -> None:
    assert to_plain("| Team | ETA |\n|---|---|\n| Boat 2 | 20 min |") == "Team, ETA\nBoat 2, 20 min"


# --- gsm_fold ---------------------------------------------------------------------------------


def test_fold_typography_to_gsm() -> None:
    text = "Don’t wait — “move” now… 2×3 • boats\u00a0ready ‘ok’ – café ﬁne"
    folded = gsm_fold(text)
    assert folded == "Don't wait - \"move\" now... 2x3 - boats ready 'ok' - café fine"
    assert is_gsm7(folded)


def test_fold_drops_emoji_in_english() -> None:
    assert gsm_fold("⚠️ Move up 👍🏽 now") == "Move up now"


@pytest.mark.parametrize(
    "text",
    [
        "ছাদে থাকুন — এখনই…",
        "छत पर रहें — अभी…",
        "چھت پر رہیں — ابھی…",
        "Stay on roof — ছাদে থাকুন",  # mixed: one Bengali letter keeps the whole text UCS-2
    ],
)
def test_fold_never_touches_indic_or_urdu(text: str) -> None:
    assert gsm_fold(text) == text
    assert encoding(gsm_fold(text)) == "ucs2"


def test_fold_saves_segments_for_english() -> None:
    text = "Don’t go into the water — it may carry live current. " * 3
    assert segments(text) == 3
    assert segments(gsm_fold(text)) == 1


@settings(max_examples=300, deadline=None)
@given(mixed_text)
def test_fold_is_gsm_or_identity(text: str) -> None:
    folded = gsm_fold(text)
    assert folded == text or is_gsm7(folded)
    assert gsm_fold(folded) == folded


# --- fit --------------------------------------------------------------------------------------

SUFFIX = " [LF-4821]"


def test_fit_short_text_unchanged_but_plain() -> None:
    assert fit("**Stay** on the roof.", 1, suffix=SUFFIX) == "Stay on the roof. [LF-4821]"


def test_fit_cuts_at_sentence_end_gsm() -> None:
    text = "Stay on the roof. Do not enter the water. " * 10
    out = fit(text, 1, suffix=SUFFIX)
    assert out.endswith("water. [LF-4821]") or out.endswith("roof. [LF-4821]")
    assert segments(out) == 1
    assert encoding(out) == "gsm7"
    assert len(out) > 120  # did not throw most of the room away


def test_fit_cuts_at_bengali_danda() -> None:
    text = "ছাদে থাকুন। পানিতে নামবেন না। " * 20
    out = fit(text, 2, suffix=SUFFIX)
    assert out.endswith("। [LF-4821]")
    assert segments(out) <= 2


def test_fit_word_boundary_with_gsm_ellipsis() -> None:
    text = "stay calm and wait for the boat team " * 20  # no sentence end at all
    out = fit(text, 1, suffix=SUFFIX)
    assert out.endswith("... [LF-4821]")
    assert "…" not in out  # would force UCS-2
    body = out[: -len("... [LF-4821]")]
    assert text.startswith(body)
    assert text[len(body)] == " "  # cut at a word boundary
    assert segments(out) == 1


def test_fit_ucs2_uses_single_char_ellipsis() -> None:
    text = "পানিতে নামবেন না এবং অপেক্ষা করুন " * 20
    out = fit(text, 1, suffix=SUFFIX)
    assert out.endswith("… [LF-4821]")
    assert segments(out) == 1


def test_fit_folds_to_keep_gsm_budget() -> None:
    text = "Don’t enter the water — wait for the boat. " * 3  # 3 parts in UCS-2, 1 after folding
    out = fit(text, 1)
    assert encoding(out) == "gsm7"
    assert segments(out) == 1


def test_fit_never_leaves_dangling_virama_or_mark() -> None:
    # One long "word" of conjuncts: the cut must fall between clusters.
    word = "ক্ষ্মী" * 60
    for budget in (1, 2):
        out = fit(word, budget)
        body = out.removesuffix("…")
        assert unicodedata.combining(body[-1]) != 9
        assert unicodedata.category(word[len(body)])[0] != "M"
        assert segments(out) <= budget


def test_fit_suffix_larger_than_budget_still_respects_budget() -> None:
    out = fit("hello", 1, suffix="x" * 400)
    assert segments(out) == 1


def test_fit_rejects_zero_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        fit("hello", 0)


suffixes = st.sampled_from(["", SUFFIX, " [মামলা-12]", " 👍", " #"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mixed_text, any_text), st.integers(min_value=1, max_value=4), suffixes)
def test_fit_respects_budget_and_graphemes(text: str, budget: int, suffix: str) -> None:
    out = fit(text, budget, suffix=suffix)
    assert segments(out) <= budget
    assert gammu_parts(out) <= budget
    assert out.endswith(suffix)
    body = out[: len(out) - len(suffix)] if suffix else out
    plain = gsm_fold(to_plain(text))
    for ell in ("...", "…"):
        if body != plain and body.endswith(ell) and plain.startswith(body[: -len(ell)]):
            body = body[: -len(ell)]
            break
    if body and body != plain and plain.startswith(body):
        nxt = plain[len(body)]
        # The next character must start a new grapheme / conjunct.
        assert unicodedata.category(nxt)[0] != "M"
        assert unicodedata.combining(body[-1]) != 9
        assert nxt not in "\u200d\u200c"
