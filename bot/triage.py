"""Deterministic multilingual triage: priority from the text alone, no model.

It runs before the model so that the auto-ack and the queue lane never wait for it, and so that a
life threat is escalated even when the model is down. It errs towards urgency: a false CRITICAL
costs a responder a glance, a missed one can cost a life.

Levels
------
* CRITICAL — immediate threat to life: drowning / swept away, trapped, unconscious, not
  breathing, bleeding, snakebite, electric shock or lightning, labour, fire, collapse, SOS pleas
  ("save us", "bachao"), water at chest/neck level, seizures / heart attack; or a combination such
  as water rising + (roof, plea, child, elderly, pregnant, injured…), snake + bite, child or
  pregnant woman + danger, roof + plea.
* HIGH — injured, pain, sick (fever, diarrhoea…), elderly / disabled, pregnant, stranded or cut
  off, on a roof or in a tree, water rising, no food or water, a snake, danger, a plea for help.
* MEDIUM — needs supplies, shelter or evacuation questions, missing-person information; also any
  message we cannot classify that is not a question (unknown is not safe).
* LOW — thanks, "we are safe", status enquiries, general questions, keyword commands.

Matching: the text's matching form (bot.textclean.normalize) drops terminal escape sequences,
is NFC-normalised, case-folded, stripped of invisible characters, apostrophes, Indic nukta /
chandrabindu (and Devanagari anusvara), Arabic diacritics, and variant Arabic letters are unified
(ي→ی, ك→ک, ه→ہ); runs of a repeated letter collapse to one ("helppp" → "help", "paani" → "pani").
The vocabulary (bot/vocab.py) goes through the same normalisation, so both sides agree. Terms
match on word boundaries (for every script); a trailing ``*`` makes a term a prefix (stems such as
"drown*" or "ডুবছ*"); `` ~ `` in a term allows up to three words in between ("pani ~ barh*"
matches "pani bahut tezi se barh raha"). Negation is not modelled on purpose ("no one is injured"
stays HIGH).

Symbols: 🆘 and Morse SOS ("...---...") are CRITICAL; "SOS" spelled out ("S.O.S", "s o s") is the
word. 🚨 ⚠ 🚑 are an alarm (HIGH) and 🌊 is water rising (HIGH); with a scene — 🏠 🏚 🏊 🛟 🔥,
a distress face 😭 😱 😰 … or a plea 🙏 — they make a life threat ("🌊🏠😭🙏", "⚠️🏠", "🚨🌊").
🙏 or 👍 alone stay LOW; a message of only distress or scene symbols is unclassified (MEDIUM).

SMS keyword commands
--------------------
A message that consists of a keyword (case-insensitive, surrounding punctuation ignored,
"please" tolerated) is a command. Only JOIN and STATUS take an argument.

* JOIN <area> — join, subscribe; যোগ, যোগ দিন, যুক্ত করুন; जुड़ें, जोड़ें, शामिल; شامل,
  شامل کریں; jog, jog din, judo, jodo, shamil.
* STOP — stop, unsubscribe, cancel, quit; বন্ধ, বন্ধ করুন, থামুন, থামো; रोको, बंद, बंद करो;
  بند, بند کرو, روکو; bondho, band, bandh, roko, ruko, thamo.
* STOP also with opt-out filler: "STOP ALERTS", "stop sms", "unsubscribe me", "STOP LF-4821",
  "alert band karo".
* HELP (the menu) — info, menu, keywords, "?"; তথ্য, মেনু; जानकारी, मेनू; معلومات, مینو.
  "help", "madad", "সাহায্য", "मदद", "مدد" are NOT the menu: on a disaster line they are a cry for
  help (a HIGH plea that opens a case and asks where they are).
* STATUS [<case code>] — status, update, case; অবস্থা, স্ট্যাটাস; स्थिति, स्टेटस, हाल; حالت,
  صورتحال, اسٹیٹس; obostha, sthiti, halat. Any other argument makes it a report ("update: SOS").

A message with a critical or high signal is never a command ("join us we are trapped on the roof"),
and a JOIN area is at most MAX_AREA_WORDS words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.lang import detect_script_lang
from bot.models import Priority
from bot.textclean import normalize
from bot.vocab import (
    BITE,
    CHILD,
    COMMAND_WORDS,
    CRITICAL_COMBOS,
    CRITICAL_SIGNALS,
    EXCLUDE,
    HIGH_COMBOS,
    HIGH_SIGNALS,
    LOW_SIGNALS,
    MEDIUM_SIGNALS,
    OPT_OUT_FILLER,
    POLITE,
    SYMBOL_MODIFIERS,
    SYMBOL_SIGNALS,
    TELLING_SYMBOLS,
)

__all__ = ["Keyword", "Triage", "normalize", "parse_keyword", "triage"]


class Keyword(StrEnum):
    JOIN = "join"
    STOP = "stop"
    HELP = "help"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Triage:
    priority: Priority
    lang: str  # "bn" | "hi" | "ur" | "en" (script-based; romanised counts as "en")
    life_threat: bool
    reasons: tuple[str, ...]  # matched signals, then combinations such as "water_rising+roof"
    keyword: Keyword | None = None
    argument: str = ""  # JOIN area or STATUS case code, as the sender wrote it


_SPACE = re.compile(r"\s+")


# --- vocabulary (bot/vocab.py) ----------------------------------------------------------------


def _match_form(text: str) -> str:
    """normalize() with punctuation and symbols as spaces, padded: words are runs of non-spaces.

    Python's \\w misses Indic vowel signs, so boundaries are spaces rather than \\b; this also
    keeps the compiled patterns small (literal spaces instead of big character classes).
    """
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZ" else ch for ch in normalize(text))
    return f" {_SPACE.sub(' ', text).strip()} "


def _word_regex(word: str) -> str:
    stem = word.endswith("*")
    core = " ".join(re.escape(w) for w in _match_form(word.removesuffix("*")).split())
    # "drown*" is a stem: any further letters of the same word may follow.
    return core + "[^ ]*" if stem else core


def _term_regex(term: str) -> str:
    chunks = [" ".join(_word_regex(word) for word in chunk.split()) for chunk in term.split(" ~ ")]
    # " ~ " lets up to three words stand between ("pani ab bahut barh raha").
    return " (?:[^ ]+ ){0,3}".join(chunks)


def _compile(terms: Iterable[str]) -> re.Pattern[str]:
    alternation = "|".join(_term_regex(t) for t in terms)
    return re.compile(f"(?<= )(?:{alternation})(?= )")


def _compile_table(table: Mapping[str, tuple[str, ...]]) -> dict[str, re.Pattern[str]]:
    return {name: _compile(terms) for name, terms in table.items()}


_CRITICAL = _compile_table(CRITICAL_SIGNALS)
_HIGH = _compile_table(HIGH_SIGNALS)
_MEDIUM = _compile_table(MEDIUM_SIGNALS)
_LOW = _compile_table(LOW_SIGNALS)
_MODIFIERS = _compile_table({"bite": BITE, "child": CHILD})
_EXCLUDE_RE = _compile(EXCLUDE)

# Someone clinging to a roof types what they can: an emoji string or a Morse SOS is a message.
# _match_form() turns symbols into spaces, so they are read from the raw text instead (a
# codepoint test: "⚠️", "🏊‍♀️" and skin-toned forms contain the base symbol).
_MORSE_SOS = re.compile(r"(?:[.·•∙]\s*){3}(?:[-–—−_]\s*){3}(?:[.·•∙]\s*){2}[.·•∙]")


def _symbols(text: str) -> tuple[set[str], set[str]]:
    """(signals, modifiers) carried by emoji and Morse in the raw text."""
    plain = unicodedata.normalize("NFKC", text)
    signals = {name for name, chars in SYMBOL_SIGNALS.items() if any(c in plain for c in chars)}
    if _MORSE_SOS.search(plain):
        signals.add("sos")
    mods = {name for name, chars in SYMBOL_MODIFIERS.items() if any(c in plain for c in chars)}
    return signals, mods


def _matches(table: Mapping[str, re.Pattern[str]], text: str) -> set[str]:
    return {name for name, rx in table.items() if rx.search(text)}


# --- keyword commands -------------------------------------------------------------------------

_COMMANDS: dict[str, Keyword] = {
    normalize(word): Keyword(name) for name, words in COMMAND_WORDS.items() for word in words
}
_TAKES_ARGUMENT = frozenset({Keyword.JOIN, Keyword.STATUS})
_CASE_CODE_RE = re.compile(r"(?:lf-?)?\d{1,7}", re.I)
MAX_AREA_WORDS = 6
_EDGE_PUNCT = "#/!.,;:-–—\"'()[]<>*_~।॥۔،؟ \t\n"


def parse_keyword(text: str) -> tuple[Keyword, str] | None:
    """``(command, argument)`` when the message is an SMS keyword command, else None.

    The argument (JOIN area, STATUS case code) keeps the sender's spelling and case.
    """
    raw = unicodedata.normalize("NFC", text).strip().strip(_EDGE_PUNCT + "!?")
    if not raw:
        return (Keyword.HELP, "") if text.strip() and set(text.strip()) <= set("?") else None
    tokens = raw.split()
    if len(tokens) > 1 and normalize(tokens[0].strip(_EDGE_PUNCT)) in OPT_OUT_FILLER:
        opt_out = parse_keyword(" ".join(tokens[1:]))  # "alert band karo", "sms stop"
        return opt_out if opt_out is not None and opt_out[0] is Keyword.STOP else None
    # Longest keyword first: "বন্ধ করুন" before "বন্ধ".
    for width in (3, 2, 1):
        if len(tokens) < width:
            continue
        head = normalize(" ".join(tokens[:width]).strip(_EDGE_PUNCT))
        cmd = _COMMANDS.get(head)
        if cmd is None:
            continue
        rest = [t for t in tokens[width:] if normalize(t.strip(_EDGE_PUNCT)) not in POLITE]
        if cmd is Keyword.STOP:
            rest = [
                t
                for t in rest
                if normalize(t.strip(_EDGE_PUNCT)) not in OPT_OUT_FILLER
                and not _CASE_CODE_RE.fullmatch(t.strip(_EDGE_PUNCT))
            ]
        argument = " ".join(rest).strip(_EDGE_PUNCT)
        if argument and cmd not in _TAKES_ARGUMENT:
            return None  # "info, water is rising" is a message, not a menu request
        if cmd is Keyword.STATUS and argument and not _CASE_CODE_RE.fullmatch(argument):
            return None  # "update: drowning" is a report; the argument is only ever a case code
        if cmd is Keyword.JOIN and len(argument.split()) > MAX_AREA_WORDS:
            return None  # "join us we are trapped on the roof…" is a message
        return cmd, argument
    return None


# --- triage -----------------------------------------------------------------------------------


def triage(text: str) -> Triage:
    """Priority, language and reasons for one inbound message. Pure and deterministic."""
    lang = detect_script_lang(text)
    command = parse_keyword(text)
    keyword, argument = command if command else (None, "")
    norm = _EXCLUDE_RE.sub(" ", _match_form(text))

    symbols, symbol_mods = _symbols(text)
    critical = _matches(_CRITICAL, norm) | (symbols & CRITICAL_SIGNALS.keys())
    high = _matches(_HIGH, norm) | (symbols - CRITICAL_SIGNALS.keys())
    medium = _matches(_MEDIUM, norm)
    low = _matches(_LOW, norm)
    mods = _matches(_MODIFIERS, norm) | symbol_mods
    present = critical | high | medium | mods

    combos: list[str] = []
    for name, required, any_of in CRITICAL_COMBOS:
        if required <= present and (not any_of or any_of & present):
            combos.append(name)
    high_combos = [name for name, required in HIGH_COMBOS if required <= present]

    if keyword is not None and (critical or combos or high - {"plea"} or high_combos):
        # "join us we are trapped", "update: drowning": a report that starts like a keyword.
        keyword, argument = None, ""

    if critical or combos:
        priority = Priority.CRITICAL
    elif high - {"plea"} or high_combos:
        priority = Priority.HIGH
    elif "plea" in high and not ({"thanks", "safe"} & low):
        # "thanks for the help" is not a plea; "help!" is.
        priority = Priority.HIGH
    elif medium:
        priority = Priority.MEDIUM
    elif (
        low
        or keyword is not None
        or "?" in text
        or (not norm.strip() and not symbol_mods & TELLING_SYMBOLS)
    ):
        priority = Priority.LOW
    else:
        # Nothing recognised and not a question: unknown is not the same as safe.
        priority = Priority.MEDIUM
        low.add("unclassified")

    reasons = (
        *sorted(critical),
        *sorted(high),
        *sorted(medium),
        *sorted(mods),
        *(sorted(low) if priority is Priority.LOW or "unclassified" in low else ()),
        *combos,
        *high_combos,
    )
    return Triage(
        priority=priority,
        lang=lang,
        life_threat=priority is Priority.CRITICAL,
        reasons=reasons,
        keyword=keyword,
        argument=argument,
    )
