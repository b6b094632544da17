"""Keyword queries for the FTS5 table: user text → a MATCH expression that can never be a syntax
error, tokenised the way the table's tokenizer splits text."""

from __future__ import annotations

import unicodedata

FTS_TOKENIZER = "unicode61 categories 'L* N* Co M*'"
MAX_QUERY_TOKENS = 24

# Very common words that only add noise to an OR query (BM25 would down-weight them anyway).
_STOPWORDS = frozenset(
    {
        *("a", "an", "and", "are", "at", "be", "by", "can", "do", "does", "for", "from"),
        *("how", "i", "in", "is", "it", "me", "my", "of", "on", "or", "our", "should", "so"),
        *("the", "there", "this", "to", "we", "what", "when", "where", "which", "who"),
        *("will", "with", "you", "your"),
    }
)


def _is_token_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "LNM" or cat == "Co"


def fts_tokens(text: str) -> list[str]:
    """Split like the FTS5 tokenizer does (letters, numbers, marks, private use)."""
    tokens: list[str] = []
    cur: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if _is_token_char(ch):
            cur.append(ch)
        elif cur:
            tokens.append("".join(cur))
            cur = []
    if cur:
        tokens.append("".join(cur))
    return tokens


def build_fts_query(text: str, max_tokens: int = MAX_QUERY_TOKENS) -> str | None:
    """A safe FTS5 MATCH expression: each token double-quoted (so NEAR/AND/*/() are plain
    words), prefix-matched when 3+ chars, OR-ed together. None when nothing is searchable."""
    seen: dict[str, None] = {}
    for tok in fts_tokens(text.casefold()):
        if tok in _STOPWORDS or (len(tok) < 2 and not tok.isdigit()):
            continue
        seen.setdefault(tok, None)
        if len(seen) >= max_tokens:
            break
    if not seen:
        return None
    # Tokens can only hold L/N/M/Co characters, so there is never a '"' to escape; double any
    # anyway in case the tokenizer rules change.
    terms = ['"' + tok.replace('"', '""') + '"' + ("*" if len(tok) >= 3 else "") for tok in seen]
    return " OR ".join(terms)
