"""The protocol library check: what a victim reads in an SMS summary must say the same thing in
every language, keep its "do not" lines, cite its sources and fit the segment budget.

The summary (front matter ``sms:``) is sent verbatim in degraded mode, with no model in between.
Shortened translations once dropped the lines that keep people alive (issue 17); the check below
makes such a cut fail the suite. It is data-driven: every topic found in the library is checked,
so a new topic must exist in all four languages with its safety file.

Rules (the library format in protocols/library):
- front matter: ``sources`` (comma-separated http(s) URLs), ``reviewed`` and ``reviewed_by``
  present (empty until a clinician and a native speaker have reviewed the document);
- every language has every topic;
- numbers: every number in a topic's summary appears in that topic's summary in every language;
- safety: ``safety/<topic>.toml`` lists the "do not" keys (``never``) and per-language phrases,
  one of which every language's summary must contain (NFC, case-insensitive);
- budget: a summary fits the default SMS segment budget (bot/sms_text.py counts segments).
"""

from __future__ import annotations

import re
import shutil
import tomllib
import unicodedata
from datetime import date
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rich.console import Console

from bot.doctor import Report, _protocols
from bot.sms_text import segments
from config.settings import PACKAGED_LIBRARY, ProtocolsSettings, SmsSettings
from protocols.documents import LANGS, Document, DocumentError, load_document

SEGMENT_BUDGET = SmsSettings().segment_budget
_NUMBER = re.compile(r"\d+(?:[./]\d+)?")


# -- the checker --------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def numbers(text: str) -> set[str]:
    """Numbers in any script (Bengali, Devanagari, Arabic-Indic digits → ASCII); ½ is 1/2."""
    ascii_digits = "".join(
        str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch
        for ch in unicodedata.normalize("NFC", text)
    )
    return set(_NUMBER.findall(ascii_digits.replace("½", "1/2")))


def load_library(root: Path) -> tuple[dict[tuple[str, str], Document], list[str]]:
    docs: dict[tuple[str, str], Document] = {}
    problems: list[str] = []
    for path in sorted(p for p in root.glob("*/*.md")):
        try:
            doc = load_document(path)
        except DocumentError as exc:
            problems.append(f"{path.relative_to(root)}: unreadable: {exc}")
            continue
        if doc.lang != path.parent.name or doc.topic != path.stem:
            problems.append(f"{path.relative_to(root)}: front matter says {doc.lang}/{doc.topic}")
        docs[(doc.lang, doc.topic)] = doc
    return docs, problems


def _front_matter_problems(doc: Document) -> list[str]:
    problems: list[str] = []
    meta = doc.meta
    for key in ("title", "source", "version", "sms"):
        if not meta.get(key, "").strip():
            problems.append(f"{doc.key}: front matter `{key}:` is missing or empty")
    urls = [u.strip() for u in meta.get("sources", "").split(",") if u.strip()]
    if not urls:
        problems.append(f"{doc.key}: front matter `sources:` lists no URL")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
            problems.append(f"{doc.key}: `sources:` entry {url!r} is not an http(s) URL")
    for key in ("reviewed", "reviewed_by"):
        if key not in meta:
            problems.append(f"{doc.key}: front matter has no `{key}:` line (leave it empty)")
    reviewed = meta.get("reviewed", "").strip()
    if reviewed:
        try:
            date.fromisoformat(reviewed)
        except ValueError:
            problems.append(f"{doc.key}: `reviewed: {reviewed}` is not an ISO date")
        if not meta.get("reviewed_by", "").strip():
            problems.append(f"{doc.key}: `reviewed:` is set but `reviewed_by:` is empty")
    return problems


def _safety_problems(root: Path, topic: str, docs: dict[tuple[str, str], Document]) -> list[str]:
    path = root / "safety" / f"{topic}.toml"
    if not path.is_file():
        return [f"{topic}: no safety/{topic}.toml with its `never` keys"]
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return [f"safety/{topic}.toml: unreadable: {exc}"]
    never = spec.get("never")
    phrases = spec.get("phrases", {})
    if not isinstance(never, list) or not never:
        return [f"safety/{topic}.toml: `never` must list at least one key"]
    problems: list[str] = []
    for key in never:
        by_lang = phrases.get(key)
        if not isinstance(by_lang, dict):
            problems.append(f"safety/{topic}.toml: key {key!r} has no [phrases.{key}] table")
            continue
        for lang in LANGS:
            wanted = by_lang.get(lang)
            if not wanted or not all(isinstance(w, str) and w.strip() for w in wanted):
                problems.append(f"safety/{topic}.toml: [phrases.{key}] has no {lang} phrase")
                continue
            doc = docs.get((lang, topic))
            if doc is None:
                continue  # reported as a missing document
            sms = _norm(doc.sms)
            if not any(_norm(w) in sms for w in wanted):
                problems.append(
                    f"{lang}/{topic}: SMS summary drops the safety line {key!r} "
                    f"(expected one of {wanted})"
                )
    return problems


def check_library(root: Path) -> list[str]:
    """Every problem in the library at ``root``, one line each; empty when it holds."""
    docs, problems = load_library(root)
    topics = sorted({topic for _, topic in docs})
    if not topics:
        return [*problems, f"no documents under {root}"]
    for doc in docs.values():
        problems += _front_matter_problems(doc)
        n = segments(doc.sms)
        if n > SEGMENT_BUDGET:
            problems.append(f"{doc.key}: SMS summary takes {n} SMS parts, budget {SEGMENT_BUDGET}")
    for topic in topics:
        present = [lang for lang in LANGS if (lang, topic) in docs]
        problems += [f"{lang}/{topic}: missing" for lang in LANGS if lang not in present]
        found = {lang: numbers(docs[(lang, topic)].sms) for lang in present}
        every = set().union(*found.values())
        for lang in present:
            lacking = sorted(every - found[lang])
            if lacking:
                problems.append(
                    f"{lang}/{topic}: SMS summary lacks the number(s) {lacking} "
                    "that another language's summary of this topic gives"
                )
        problems += _safety_problems(root, topic, docs)
    for extra in sorted((root / "safety").glob("*.toml")):
        if extra.stem not in topics:
            problems.append(f"safety/{extra.name}: no documents for topic {extra.stem!r}")
    return problems


# -- the shipped library holds ----------------------------------------------------------------


def test_shipped_library_passes_the_check() -> None:
    problems = check_library(PACKAGED_LIBRARY)
    assert not problems, "\n".join(problems)


def test_numbers_are_read_in_every_script() -> None:
    assert numbers("১ লিটার, ৬ চা-চামচ, ১/২ চামচ, ১০-১৪ দিন") == {"1", "6", "1/2", "10", "14"}
    assert numbers("1 लीटर, ½ चम्मच, ३० बार") == {"1", "1/2", "30"}
    assert numbers("۱۰ میٹر، ٣٠ منٹ") == {"10", "30"}
    assert numbers("30:2, 5-6%") == {"30", "2", "5", "6"}


# -- the check catches a planted violation ----------------------------------------------------


def _tamper(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    shutil.copytree(PACKAGED_LIBRARY, root)
    assert check_library(root) == []
    return root


def test_check_catches_a_dropped_safety_line(library_copy: Path) -> None:
    _tamper(library_copy, "hi/electric-shock.md", ", धातु कभी नहीं।", "।")
    problems = check_library(library_copy)
    assert any("hi/electric-shock" in p and "'metal'" in p for p in problems), problems


def test_check_catches_a_changed_number(library_copy: Path) -> None:
    _tamper(library_copy, "ur/drowning.md", "پھر 30 بار", "پھر 15 بار")
    problems = check_library(library_copy)
    assert any("ur/drowning" in p and "'30'" in p for p in problems), problems
    assert any("/drowning" in p and "'15'" in p for p in problems), problems


def test_check_catches_a_missing_language(library_copy: Path) -> None:
    (library_copy / "bn" / "snakebite.md").unlink()
    assert "bn/snakebite: missing" in check_library(library_copy)


def test_check_catches_bad_front_matter(library_copy: Path) -> None:
    _tamper(library_copy, "en/bleeding.md", "sources: https://", "sources: ftp://")
    _tamper(library_copy, "bn/bleeding.md", "reviewed_by:\n", "")
    _tamper(library_copy, "hi/bleeding.md", "reviewed:\n", "reviewed: last week\n")
    problems = check_library(library_copy)
    assert any("en/bleeding" in p and "not an http(s) URL" in p for p in problems), problems
    assert any("bn/bleeding" in p and "`reviewed_by:`" in p for p in problems), problems
    assert any("hi/bleeding" in p and "not an ISO date" in p for p in problems), problems


def test_check_catches_an_over_budget_summary(library_copy: Path) -> None:
    _tamper(library_copy, "bn/evacuation.md", "sms: ", "sms: " + "জরুরি অবস্থা। " * 10)
    problems = check_library(library_copy)
    assert any("bn/evacuation" in p and "SMS parts" in p for p in problems), problems


def test_check_catches_a_topic_without_safety_keys(library_copy: Path) -> None:
    (library_copy / "safety" / "hypothermia.toml").unlink()
    problems = check_library(library_copy)
    assert any("hypothermia" in p and "safety/hypothermia.toml" in p for p in problems)


# -- pinned safety lines (issue 17, "Dangerous or misleading today") --------------------------


def sms(lang: str, topic: str) -> str:
    return _norm(load_document(PACKAGED_LIBRARY / lang / f"{topic}.md").sms)


def body(lang: str, topic: str) -> str:
    return _norm(load_document(PACKAGED_LIBRARY / lang / f"{topic}.md").body)


@pytest.mark.parametrize(
    ("lang", "level", "boiled", "not_tablespoon"),
    [
        ("en", "level teaspoon", "boiled", "not tablespoons"),
        ("bn", "সমান চা-চামচ", "ফোটানো", "টেবিল-চামচ নয়"),
        ("hi", "समतल छोटे चम्मच", "उबला", "बड़ा चम्मच नहीं"),
        ("ur", "ہموار چھوٹے چمچ", "ابلا", "بڑا چمچ نہیں"),
    ],
)
def test_ors_recipe_says_level_teaspoons_and_boiled_water(
    lang: str, level: str, boiled: str, not_tablespoon: str
) -> None:
    """Item 1 (and 8 for Bengali): a heaped spoon or a tablespoon of salt is ~3x the dose."""
    text = sms(lang, "diarrhoea-ors")
    level_word = _norm(level.split(maxsplit=1)[0])
    assert text.count(level_word) >= 2, f"{lang}: 'level' for both sugar and salt: {text}"
    assert _norm(level) in text and _norm(boiled) in text and _norm(not_tablespoon) in text
    assert {"1", "6", "1/2"} <= numbers(text)


ELECTRIC = {
    "en": [
        "fallen line",
        "floodwater",
        "do not go near",
        "10 m",
        "wait until the power is cut",
        "stand on something dry",
        "never metal",
    ],
    "bn": [
        "তার ছিঁড়ে পড়লে",
        "পানিতে",
        "কাছে যাবেন না",
        "১০ মিটার",
        "বিদ্যুৎ কাটার অপেক্ষা",
        "শুকনো কিছুতে দাঁড়িয়ে",
        "ধাতু কখনো নয়",
    ],
    "hi": [
        "तार गिरा",
        "बाढ़ के पानी",
        "पास न जाएँ",
        "10 मीटर",
        "बिजली कटने तक",
        "सूखी चीज़ पर खड़े",
        "धातु कभी नहीं",
    ],
    "ur": [
        "تار گرا",
        "سیلابی پانی",
        "پاس نہ جائیں",
        "10 میٹر",
        "بجلی کٹنے تک",
        "خشک چیز پر کھڑے",
        "دھات کبھی نہیں",
    ],
}


@pytest.mark.parametrize("lang", LANGS)
def test_electric_shock_warns_about_fallen_lines_and_metal(lang: str) -> None:
    """Items 2 and 6: fallen line or person in floodwater → keep away, wait for the cut."""
    text = sms(lang, "electric-shock")
    missing = [p for p in ELECTRIC[lang] if _norm(p) not in text]
    assert not missing, f"{lang}/electric-shock lacks {missing}: {text}"


@pytest.mark.parametrize(
    ("lang", "only_if_safe", "poles_wires"),
    [
        ("en", "only if it is safe", "poles and fallen wires"),
        ("bn", "নিরাপদ হলে তবেই", "খুঁটি ও ছেঁড়া তার"),
        ("hi", "तभी बंद करें जब सुरक्षित हो", "खंभों और गिरे तारों से दूर"),
        ("ur", "تبھی بند کریں جب محفوظ ہو", "کھمبوں اور گری تاروں سے دور"),
    ],
)
def test_flood_during_switch_off_only_if_safe(
    lang: str, only_if_safe: str, poles_wires: str
) -> None:
    """Item 3."""
    text = sms(lang, "flood-during")
    assert _norm(only_if_safe) in text and _norm(poles_wires) in text, text


@pytest.mark.parametrize(
    ("lang", "repeat", "stomach"),
    [
        ("en", "repeat 30:2 until help comes", "do not press the stomach"),
        ("bn", "সাহায্য না আসা পর্যন্ত চালিয়ে যান", "পেটে চাপ দেবেন না"),
        ("hi", "मदद आने तक यही दोहराएँ", "पेट न दबाएँ"),
        ("ur", "مدد آنے تک یہی دہرائیں", "پیٹ نہ دبائیں"),
    ],
)
def test_drowning_cpr_is_30_2_repeated_and_no_stomach_press(
    lang: str, repeat: str, stomach: str
) -> None:
    """Item 4: one round of 30 compressions and then nothing is not CPR."""
    text = sms(lang, "drowning")
    assert {"5", "30", "2"} <= numbers(text), text
    assert _norm(repeat) in text and _norm(stomach) in text, text


@pytest.mark.parametrize(
    ("lang", "officials", "electrician"),
    [
        ("en", "only when officials say it is safe", "until an electrician checks"),
        ("bn", "প্রশাসন নিরাপদ বললে তবেই", "মিস্ত্রি না দেখা পর্যন্ত"),
        ("hi", "प्रशासन सुरक्षित कहे तभी", "मिस्त्री जाँच न ले"),
        ("ur", "انتظامیہ محفوظ کہے تبھی", "مستری جانچ نہ لے"),
    ],
)
def test_flood_after_officials_and_electrician_first(
    lang: str, officials: str, electrician: str
) -> None:
    """Item 5: people must not check live wiring and gas themselves."""
    text = sms(lang, "flood-after")
    assert _norm(officials) in text and _norm(electrician) in text, text


@pytest.mark.parametrize(
    ("lang", "krait", "signs"),
    [
        ("en", "krait", ["painless", "floor", "belly pain", "drooping eyelids"]),
        ("bn", "কালাচ", ["ব্যথাহীন", "মেঝেতে", "পেটব্যথা", "চোখের পাতা"]),
        ("hi", "करैत", ["बिना दर्द", "ज़मीन पर", "पेट दर्द", "पलकें"]),
        ("ur", "کریٹ", ["بغیر درد", "زمین پر", "پیٹ درد", "پلکیں"]),
    ],
)
def test_snakebite_krait_warning(lang: str, krait: str, signs: list[str]) -> None:
    """Item 7: a painless night bite, signs next morning."""
    text = sms(lang, "snakebite")
    assert _norm(krait) in text and all(_norm(s) in text for s in signs), text
    assert _norm(krait) in body(lang, "snakebite")


@pytest.mark.parametrize(
    ("lang", "pregnant"), [("en", "pregnant"), ("bn", "গর্ভবতী"), ("hi", "गर्भवती"), ("ur", "حاملہ")]
)
def test_children_elderly_keeps_pregnancy_danger_signs(lang: str, pregnant: str) -> None:
    """Item 8."""
    assert _norm(pregnant) in sms(lang, "children-elderly")


def test_english_smaller_items() -> None:
    """Item 8: tetanus immunoglobulin, no 'within a day'; the bleach dose, sunlight, fuel;
    'not close to a fire'; litre in glasses; what to send back."""
    debris = sms("en", "debris-injuries")
    assert "immunoglobulin" in debris and "even days later" in debris
    assert "within a day" not in body("en", "debris-injuries")
    assert "immunoglobulin" in body("en", "debris-injuries")
    water = sms("en", "drinking-water")
    for part in (
        "2 drops",
        "5-6%",
        "per litre",
        "double if cloudy",
        "30 minutes",
        "sun",
        "does not remove fuel or pesticides",
    ):
        assert part in water, part
    water_body = body("en", "drinking-water")
    assert "add 2 drops per litre" in water_body and "full sun for 6 hours" in water_body
    cold = sms("en", "hypothermia")
    assert "no fire" not in cold and "close to a fire" in cold
    assert "1 litre (about 5 glasses)" in sms("en", "diarrhoea-ors")


@pytest.mark.parametrize("topic", sorted(p.stem for p in (PACKAGED_LIBRARY / "en").glob("*.md")))
def test_english_summaries_end_with_what_to_send_back(topic: str) -> None:
    assert sms("en", topic).endswith("reply with your location and how many people.")


# -- doctor warns about documents never reviewed ----------------------------------------------


def _doctor_protocols(lib: Path) -> tuple[str, bool]:
    out = StringIO()
    report = Report(Console(file=out, width=300, color_system=None))
    _protocols(ProtocolsSettings(library_path=lib, embedder="none"), report)
    return out.getvalue(), report.ok


def test_doctor_warns_about_unreviewed_documents(library_copy: Path) -> None:
    text, ok = _doctor_protocols(library_copy)
    total = len(list(library_copy.glob("*/*.md")))
    assert ok, text  # a warning: drills still pass the doctor
    assert f"! protocol review: {total} of {total} documents never reviewed" in text, text
    first = sorted(f"{p.parent.name}/{p.stem}" for p in library_copy.glob("*/*.md"))[:2]
    assert ", ".join(first) in text and f"and {total - 5} more" in text, text
    assert "reviewed_by:" in text
    assert "✓ protocol library" in text


def test_doctor_is_quiet_once_every_document_is_reviewed(library_copy: Path) -> None:
    docs = sorted(library_copy.glob("*/*.md"))
    for path in docs[1:]:
        _tamper(
            library_copy,
            str(path.relative_to(library_copy)),
            "reviewed:\n",
            "reviewed: 2026-11-30\n",
        )
    text, ok = _doctor_protocols(library_copy)
    first = load_document(docs[0]).key
    never = "documents never reviewed by a clinician and a native speaker"
    assert ok and f"! protocol review: 1 of {len(docs)} {never} ({first})" in text, text
    _tamper(
        library_copy,
        str(docs[0].relative_to(library_copy)),
        "reviewed:\n",
        "reviewed: 2026-11-30\n",
    )
    text, ok = _doctor_protocols(library_copy)
    assert ok and "protocol review" not in text, text
