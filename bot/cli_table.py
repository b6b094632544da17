"""Tables for the inspecting commands that fit the terminal.

At 80 columns a table of eight columns each allowed to wrap becomes one word per line. Here each
row stays one line: short columns (case, status, time) keep their width, the free-text columns share
what is left and are cut with "…". `--wide` shows every column and the whole text, wrapped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True, slots=True)
class Col:
    key: str
    header: str = ""  # shown instead of the key in the narrow layout
    flex: int = 0  # free text: its share of the width left over (a ratio), cut with "…"
    narrow: bool = True  # shown without --wide
    short: Callable[[str], str] | None = None  # compact form for the narrow layout

    @property
    def title(self) -> str:
        return self.header or self.key


def short_time(value: str) -> str:
    """'2026-12-03T12:25:55+00:00' → '12-03 12:25' (UTC, like the full form)."""
    try:
        return datetime.fromisoformat(value).strftime("%m-%d %H:%M")
    except ValueError:
        return value


CODINGS = {"Default_No_Compression": "GSM-7", "Unicode_No_Compression": "UCS-2", "8bit": "8-bit"}


def short_coding(value: str) -> str:
    """gammu's coding names → what operators call them."""
    return CODINGS.get(value, value)


def one_line(value: str) -> str:
    return " ".join(value.split())


def render(
    console: Console,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Col],
    title: str,
    *,
    wide: bool,
    cell: Callable[[Any], str],
) -> None:
    """Print ``rows``; ``cell`` turns a value into display text."""
    if wide:
        table = Table(title=escape(title), show_lines=False)
        for col in columns:
            table.add_column(escape(col.key), overflow="fold")
        for row in rows:
            # Cells hold what people typed ("[help] …"): shown as text, never as rich markup.
            table.add_row(*[Text(cell(row.get(c.key))) for c in columns])
        console.print(table)
        return
    # A free-text column with nothing in it (no errors today) gives its share to the others.
    shown = [
        c
        for c in columns
        if c.narrow and not (c.flex and rows and not any(cell(r.get(c.key)) for r in rows))
    ]
    table = Table(
        title=escape(title),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        expand=True,  # fixed columns keep their width, free text shares the rest by ratio
    )
    for col in shown:
        table.add_column(
            escape(col.title),
            no_wrap=not col.flex,
            overflow="ellipsis",
            ratio=col.flex or None,
        )
    for row in rows:
        cells = []
        for col in shown:
            text = one_line(cell(row.get(col.key)))
            if col.short is not None and text:
                text = col.short(text)
            cells.append(Text(text, no_wrap=True, overflow="ellipsis"))
        table.add_row(*cells)
    console.print(table)
