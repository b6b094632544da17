"""The reply guard: the one check between the model's text and any outbound message.

Real models echo their instructions, leak tool-call or template syntax into the text, switch
script mid-reply, never stop, or say nothing. Every model reply (victims and staff) passes
``check`` before it may be sent; a rejected reply carries a short reason for the audit, the
turn's record and the corrective re-prompt. Deterministic, no I/O, tens of microseconds.

A tool call written into the text (Gemma's native ``<|tool_call>call:name{…}<tool_call|>`` or a
JSON object with name/arguments) is parsed by ``text_tool_calls`` so the caller can run it like
a real call (the registry still decides whether the role may use it).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot import sms_text
from bot.llm import ToolCall

# An echo: at least this many shared 4-word shingles, and this share of the reply's shingles.
SHINGLE = 4
ECHO_MIN_SHARED = 3
ECHO_MIN_RATIO = 0.2
ECHO_ALWAYS = 12  # this many shared shingles is an echo whatever the reply's length
# Words in another script than the sender's: allowed up to this many letters or this share.
FOREIGN_MIN_LETTERS = 8
FOREIGN_MAX_SHARE = 0.15
SHORT_LATIN = 3  # "OK", "ORS", "km": short Latin tokens are allowed in any reply
# "Far over" the SMS budget: the shaper trims what is a little long; this much longer is a
# ramble (or an echo) that trimming would turn into nonsense.
OVER_BUDGET_FACTOR = 2

_TEMPLATE = re.compile(
    r"<\|[^<>\n]{0,40}>|<[^<>\s]{1,40}\|>"  # <|tool_call> <|"|> <tool_call|> <|im_start|>
    r"|</?(?:start_of_turn|end_of_turn|start_of_image|end_of_image|bos|eos|pad|unk|s)>"
    r"|</?tool_(?:call|code|response|result)s?>|\[/?(?:INST|TOOL_CALLS|TOOL_RESULTS)\]|<<SYS>>"
    r"|\btool_calls?\b|\btool_code\b|\bcall:[A-Za-z_][\w.-]*\s*\{"
    r'|"(?:name|function|arguments|parameters|tool|tool_name)"\s*:',
    re.IGNORECASE,
)
_GEMMA_CALL = re.compile(
    r"<\|tool_call>\s*call:\s*([A-Za-z_][\w.-]*)\s*\{(.*?)\}\s*(?:<tool_call\|>|$)", re.DOTALL
)
_GEMMA_STR = '<|"|>'
_CITATION = re.compile(r"\s*\[(?:P\d+(?:\s*[,;]\s*P?\d+)*)\](?:\s*\[P\d+\])*")
_CASE_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,7}-\d+$", re.IGNORECASE)  # LF-4821, BHO-4821
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][\w]*\}")

_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0980, 0x09FF, "bn"),
    (0x0900, 0x097F, "hi"),
    (0xA8E0, 0xA8FF, "hi"),
    (0x0600, 0x06FF, "ur"),
    (0x0750, 0x077F, "ur"),
    (0xFB50, 0xFDFF, "ur"),
    (0xFE70, 0xFEFF, "ur"),
    (0x0000, 0x024F, "en"),  # Basic Latin … Latin Extended-B (Turkish letters are Latin)
    (0x1E00, 0x1EFF, "en"),
)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    text: str  # what may be sent (citations removed when the policy says so)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TextToolCalls:
    present: bool  # tool-call syntax found in the text
    calls: tuple[ToolCall, ...] = ()  # parsed calls (empty when the syntax did not parse)


@dataclass
class ReplyPolicy:
    """What a reply to this sender must look like. Built once per turn by the handler."""

    lang: str  # "en" (Latin), "bn", "hi", "ur": the script the reply must be in
    lang_name: str
    scaffolding: frozenset[str]  # shingles of instructions the model must not repeat
    known_words: set[str] = field(default_factory=set)  # words allowed in any script
    max_segments: int | None = None  # SMS-sized replies: segments after shaping
    max_chars: int = 4000  # staff replies
    strip_citations: bool = False

    @classmethod
    def build(
        cls,
        *,
        lang: str,
        lang_name: str,
        instructions: Iterable[str],
        known: Iterable[str | None] = (),
        max_segments: int | None = None,
        max_chars: int = 4000,
        strip_citations: bool = False,
    ) -> ReplyPolicy:
        shingles: set[str] = set()
        for text in instructions:
            shingles |= scaffold_shingles(text)
        policy = cls(
            lang=lang,
            lang_name=lang_name,
            scaffolding=frozenset(shingles),
            max_segments=max_segments,
            max_chars=max_chars,
            strip_citations=strip_citations,
        )
        policy.allow(*known)
        return policy

    def allow(self, *texts: str | None) -> None:
        """Words the reply may quote in their own script: place names from the sender's
        message, the case, the protocol passages, tool results."""
        for text in texts:
            if text:
                self.known_words.update(words(text))

    def correction(self, reason: str) -> str:
        """The one corrective re-prompt, sent as a user turn (not a mid-conversation system
        message: small models follow the last user turn best)."""
        limit = (
            f"at most {self.max_segments * 150} characters"
            if self.max_segments
            else "brief and factual"
        )
        return CORRECTION.format(reason=reason, lang_name=self.lang_name, limit=limit)


CORRECTION = (
    "Your last reply could not be sent ({reason}). Write the reply again, for a person, in "
    "{lang_name}: plain text, {limit}, without repeating these instructions, without markup or "
    "tool-call text. To use a tool, call it through the tool interface, not in the text."
)


def check(text: str, policy: ReplyPolicy, *, done_reason: str = "stop") -> Verdict:
    """Accept or reject one model reply. The first failed rule is the reason."""
    body = text.strip()
    if policy.strip_citations:
        body = strip_citations(body)
    if not any(unicodedata.category(ch)[0] in "LN" for ch in body):
        return Verdict(False, body, "empty or only punctuation")
    if m := _TEMPLATE.search(body):
        return Verdict(False, body, f"tool-call or template syntax {m.group(0)[:24]!r}")
    shared, total = echo_overlap(body, policy.scaffolding)
    if shared >= ECHO_ALWAYS or (shared >= ECHO_MIN_SHARED and shared >= ECHO_MIN_RATIO * total):
        return Verdict(False, body, f"repeats its instructions ({shared}/{total} phrases)")
    if done_reason == "length":
        return Verdict(False, body, "did not finish within num_predict (over-long)")
    if policy.max_segments is not None:
        limit = policy.max_segments * OVER_BUDGET_FACTOR
        # Measured on the raw text: markdown the shaper strips is a few characters, and a
        # factor of two leaves room for them.
        if len(body) > 160 * limit or (len(body) > 67 * limit and sms_text.segments(body) > limit):
            return Verdict(False, body, f"far over the SMS budget ({len(body)} chars)")
    elif len(body) > policy.max_chars:
        return Verdict(False, body, f"over-long ({len(body)} chars)")
    foreign, letters = foreign_letters(body, policy.lang, policy.known_words)
    if foreign > max(FOREIGN_MIN_LETTERS, FOREIGN_MAX_SHARE * letters):
        return Verdict(False, body, f"not in {policy.lang_name} script ({foreign} letters)")
    return Verdict(True, body)


# ---------------------------------------------------------------- tool calls as text


def text_tool_calls(text: str) -> TextToolCalls:
    """Tool calls written into the content instead of ``tool_calls``."""
    if not _TEMPLATE.search(text):
        return TextToolCalls(False)
    calls: list[ToolCall] = []
    for m in _GEMMA_CALL.finditer(text):
        args = _gemma_arguments(m.group(2))
        if args is None:
            return TextToolCalls(True)
        calls.append(ToolCall(m.group(1), args))
    if not calls:
        calls = _json_calls(text)
    return TextToolCalls(True, tuple(calls))


def _gemma_arguments(raw: str) -> dict[str, Any] | None:
    """``key:<|"|>text<|"|>,n:4,flag:true`` → dict; None when it is not that flat form."""
    args: dict[str, Any] = {}
    rest = raw.strip()
    while rest:
        key, sep, rest = rest.partition(":")
        key = key.strip().strip('"')
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
            return None
        rest = rest.lstrip()
        if rest.startswith(_GEMMA_STR):
            end = rest.find(_GEMMA_STR, len(_GEMMA_STR))
            if end < 0:
                return None
            args[key] = rest[len(_GEMMA_STR) : end]
            rest = rest[end + len(_GEMMA_STR) :].lstrip()
        else:
            token, _, tail = rest.partition(",")
            try:
                args[key] = json.loads(token.strip())
            except ValueError:
                return None
            if isinstance(args[key], dict | list):
                return None
            rest = "," + tail if _ else ""
        if rest.startswith(","):
            rest = rest[1:].lstrip()
        elif rest:
            return None
    return args


def _json_calls(text: str) -> list[ToolCall]:
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    starts = [i for i, ch in enumerate(text) if ch == "{"][:20]
    end = -1
    for i in starts:
        if i < end:
            continue  # inside an object already parsed
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            continue
        calls.extend(_calls_in(obj))
    return calls


def _calls_in(obj: Any) -> list[ToolCall]:
    if not isinstance(obj, dict):
        return []
    if isinstance(obj.get("tool_calls"), list):
        return [c for item in obj["tool_calls"] for c in _calls_in(item)]
    fn = obj.get("function")
    if isinstance(fn, dict):
        return _calls_in(fn)
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return []
    if isinstance(name, str) and name and isinstance(args, dict):
        return [ToolCall(name, args)]
    return []


# ---------------------------------------------------------------- measures


def strip_citations(text: str) -> str:
    """``[P1]``, ``[P1, P2]`` mean nothing to a victim and cost SMS characters."""
    return _CITATION.sub("", text).strip()


def citations(text: str) -> list[str]:
    return sorted(set(re.findall(r"P\d+", " ".join(_CITATION.findall(text)))))


_PUNCT = "".join(
    chr(c)
    for c in range(0x0000, 0x3000)
    if unicodedata.category(chr(c))[0] in "PSC" and not chr(c).isspace()
)


_EDGE_PUNCT = re.compile(f"^[{re.escape(_PUNCT)}]+|[{re.escape(_PUNCT)}]+$")


def words(text: str) -> list[str]:
    """Lower-cased words without surrounding punctuation (any script)."""
    out = []
    for raw in unicodedata.normalize("NFC", text).casefold().split():
        word = _EDGE_PUNCT.sub("", raw)
        if word:
            out.append(word)
    return out


def _shingles(tokens: list[str]) -> set[str]:
    n = SHINGLE
    return {" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@functools.lru_cache(maxsize=256)
def scaffold_shingles(template: str) -> frozenset[str]:
    """Shingles of the literal parts of an instruction text; ``{placeholders}`` split it, so
    no shingle spans a value that changes per message."""
    out: set[str] = set()
    for part in _PLACEHOLDER.split(template):
        out |= _shingles(words(part))
    return frozenset(out)


def echo_overlap(text: str, scaffolding: frozenset[str]) -> tuple[int, int]:
    """(shared shingles, reply shingles): how much of the reply is a copy of instructions."""
    mine = _shingles(words(text))
    return len(mine & scaffolding), len(mine)


@functools.lru_cache(maxsize=8192)
def _script(ch: str) -> str | None:
    """The script of a letter or mark; None for anything else (digits, punctuation)."""
    if unicodedata.category(ch)[0] not in "LM":
        return None
    cp = ord(ch)
    for lo, hi, name in _SCRIPTS:
        if lo <= cp <= hi:
            return name
    return "other"


def foreign_letters(text: str, lang: str, known: set[str]) -> tuple[int, int]:
    """(letters in words of another script than ``lang``, all letters). Numbers, case codes,
    short Latin tokens and words the sender/case/protocols used are never foreign."""
    want = lang if lang in ("bn", "hi", "ur") else "en"
    foreign = total = 0
    for word in words(text):
        scripts = [sc for sc in map(_script, word) if sc is not None]
        if not scripts:
            continue
        total += len(scripts)
        own = scripts.count(want)
        if own * 2 >= len(scripts):
            continue
        if word in known or _CASE_CODE.match(word) or word == "lifeline":
            continue
        if len(scripts) <= SHORT_LATIN and all(sc == "en" for sc in scripts):
            continue
        foreign += len(scripts) - own
    return foreign, total
