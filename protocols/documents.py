"""Protocol documents: read (.md/.txt/.pdf), clean, detect language, chunk.

A document's key is ``<lang>/<topic>`` (path-independent), and a chunk's id is the sha256 of
lang + topic + chunk text, so moving the library or re-ingesting unchanged text re-uses chunks.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from bot.errors import PermanentError
from bot.textclean import clean_text  # one cleaner for documents and staff views

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".pdf"})
# Front-matter keys. ``sources`` lists the URLs of the guidance a document follows (comma-
# separated); ``reviewed`` (ISO date) and ``reviewed_by`` stay empty until a clinician and a
# native speaker have reviewed it: `lifeline doctor` warns while they are empty.
KNOWN_KEYS = (
    "title",
    "topic",
    "lang",
    "source",
    "sources",
    "version",
    "sms",
    "reviewed",
    "reviewed_by",
)
LANGS = ("en", "bn", "hi", "ur")
TARGET_CHARS = 500
MAX_CHARS = 800  # a single sentence longer than this is split at a word boundary

_SENTENCE_END = re.compile(r"(?<=[.!?।॥۔؟])[\"'”’)\]]*\s+")
_PARA_SPLIT = re.compile(r"\n[ \t]*\n+")
_TOPIC_OK = re.compile(r"[^a-z0-9_-]+")


class DocumentError(PermanentError):
    """A file could not be read as a protocol document (reported, then skipped)."""


@dataclass(frozen=True)
class DocInfo:
    """What a document says about itself, and every chunk of it carries."""

    title: str
    topic: str
    lang: str
    source: str
    version: str
    sms: str

    def info(self) -> dict[str, Any]:
        """These fields alone, to build a chunk (or anything else) that carries them."""
        return {f.name: getattr(self, f.name) for f in fields(DocInfo)}


@dataclass(frozen=True, kw_only=True)
class Document(DocInfo):
    path: Path
    key: str
    body: str
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Chunk(DocInfo):
    id: str
    doc_key: str
    ord: int
    text: str
    path: str = ""


def detect_lang(text: str) -> str:
    """Language by script: Bengali, Devanagari (Hindi), Arabic script (Urdu), else English."""
    counts = {"bn": 0, "hi": 0, "ur": 0}
    for ch in text:
        cp = ord(ch)
        if 0x0980 <= cp <= 0x09FF:
            counts["bn"] += 1
        elif 0x0900 <= cp <= 0x097F or 0xA8E0 <= cp <= 0xA8FF:
            counts["hi"] += 1
        elif 0x0600 <= cp <= 0x06FF or 0x0750 <= cp <= 0x077F or 0xFB50 <= cp <= 0xFEFF:
            counts["ur"] += 1
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n > 0 else "en"


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split ``---``-delimited ``key: value`` front matter from the body.

    Unknown keys are kept; values may be quoted. Text without front matter → ({}, text).
    """
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    meta: dict[str, str] = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return meta, "\n".join(lines[i + 1 :]).strip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        meta[key.strip().lower()] = value
    return {}, text  # no closing fence: treat everything as body


def _norm_topic(raw: str) -> str:
    topic = _TOPIC_OK.sub("-", raw.strip().lower()).strip("-")
    return topic or "untitled"


def _first_heading(body: str) -> str:
    for line in body.split("\n"):
        s = line.strip().lstrip("#").strip()
        if s:
            return s[:120]
    return ""


def _read_pdf(path: Path) -> tuple[str, dict[str, str]]:
    try:
        reader = PdfReader(str(path))
        encrypted = reader.is_encrypted
        pages = [] if encrypted else [page.extract_text() or "" for page in reader.pages]
        meta: dict[str, str] = {}
        info = None if encrypted else reader.metadata
        if info is not None and info.title:
            meta["title"] = str(info.title)
    except Exception as exc:  # pypdf raises many types on damaged files
        raise DocumentError(f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    if encrypted:
        raise DocumentError("encrypted PDF")
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text.strip():
        raise DocumentError("PDF has no extractable text")
    return text, meta


def load_document(path: Path) -> Document:
    """Read one file into a Document; raises DocumentError for anything unusable."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type {suffix!r}")
    meta: dict[str, str]
    if suffix == ".pdf":
        raw, meta = _read_pdf(path)
        body = clean_text(raw)
    else:
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DocumentError(f"cannot read as UTF-8 text: {exc}") from exc
        text = clean_text(raw)
        if suffix == ".txt":
            meta, body = {}, text
        else:
            meta, body = parse_front_matter(text)
    meta = {k: clean_text(v).strip() for k, v in meta.items()}
    body = body.strip()
    if not body:
        raise DocumentError("document has no text")
    lang = meta.get("lang", "").strip().lower() or detect_lang(body)
    topic = _norm_topic(meta.get("topic") or path.stem)
    title = meta.get("title") or _first_heading(body) or path.stem
    return Document(
        path=path,
        key=f"{lang}/{topic}",
        title=title,
        topic=topic,
        lang=lang,
        source=meta.get("source", ""),
        version=meta.get("version", ""),
        sms=meta.get("sms", ""),
        body=body,
        meta=meta,
    )


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Split an over-long sentence at whitespace; never inside a word."""
    parts: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        cut = rest.rfind(" ", 0, max_chars)
        if cut <= 0:
            cut = rest.find(" ", max_chars)
            if cut <= 0:
                break  # one giant "word": keep whole rather than cut it
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts


def _sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def chunk_text(text: str, target: int = TARGET_CHARS, max_chars: int = MAX_CHARS) -> list[str]:
    """Chunks of about ``target`` chars: paragraphs first, then sentences, never mid-word.

    Paragraphs are packed together while they fit; a paragraph larger than ``target`` is
    split at sentence ends (``. ! ? । ۔``), and a sentence longer than ``max_chars`` at spaces.
    """
    units: list[tuple[str, str]] = []  # (text, separator before it)
    for raw_para in _PARA_SPLIT.split(text.strip()):
        para = raw_para.strip()
        if not para:
            continue
        if len(para) <= target:
            units.append((para, "\n\n"))
            continue
        sep = "\n\n"
        for line in para.split("\n"):
            for sentence in _sentences(line):
                for piece in _split_long(sentence, max_chars):
                    units.append((piece, sep))
                    sep = " "
            sep = "\n"
    chunks: list[str] = []
    current: list[tuple[str, str]] = []  # units of the chunk being packed
    size = 0
    for unit, sep in units:
        if current and size + len(sep) + len(unit) > target:
            # A heading never ends a chunk: it moves on with the steps it introduces.
            carried: list[tuple[str, str]] = []
            while len(current) > 1 and _HEADING_LINE.match(current[-1][0]):
                carried.insert(0, current.pop())
            chunks.append(_join(current))
            current, size = carried, len(_join(carried)) if carried else 0
        current.append((unit, sep))
        size = len(_join(current))
    if current:
        chunks.append(_join(current))
    return chunks


_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s+\S")


def _join(units: list[tuple[str, str]]) -> str:
    return "".join((sep if i else "") + unit for i, (unit, sep) in enumerate(units))


def chunk_id(lang: str, topic: str, text: str) -> str:
    return hashlib.sha256(f"{lang}\x1f{topic}\x1f{text}".encode()).hexdigest()


def chunk_document(doc: Document, target: int = TARGET_CHARS) -> list[Chunk]:
    seen: set[str] = set()
    chunks: list[Chunk] = []
    texts = chunk_text(doc.body, target=target)
    if doc.sms:
        # A summary chunk (title + SMS summary): a compact statement of the whole document
        # that helps short victim questions find the right topic.
        texts.insert(0, f"{doc.title}: {doc.sms}")
    for text in texts:
        cid = chunk_id(doc.lang, doc.topic, text)
        if cid in seen:  # a repeated paragraph inside one document is stored once
            continue
        seen.add(cid)
        chunks.append(
            Chunk(
                id=cid,
                doc_key=doc.key,
                ord=len(chunks),
                text=text,
                path=str(doc.path),
                **doc.info(),
            )
        )
    return chunks


def iter_files(paths: list[Path]) -> list[Path]:
    """Supported files under the given files/directories, sorted, de-duplicated."""
    found: dict[Path, None] = {}
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES:
                    found[f.resolve()] = None
        elif p.is_file():
            found[p.resolve()] = None
        else:
            log.warning("protocol path does not exist: %s", p)
    return list(found)
