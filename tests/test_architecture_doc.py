"""docs/architecture.md names, per invariant, the tests that guard it: each must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## 7. Invariants"


def test_every_test_the_invariant_table_names_exists() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = doc[doc.index(SECTION) :]
    named = set(re.findall(r"`(test_\w+)`", table))
    defined: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        defined |= set(re.findall(r"^(?:async )?def (test_\w+)\(", text, re.MULTILINE))
    assert len(named) > 50  # the table is there and was read
    assert sorted(named - defined) == []
