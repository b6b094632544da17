"""Arguments of the dispatch tools the model may call, checked before any tool runs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from bot.tools import ToolArgs

PriorityLabel = Literal["critical", "high", "medium", "low"]

# A location is a place: text that echoes the prompt around the sender's message (the model
# copying its instructions into an argument) is refused as an argument error, never stored.
_SCAFFOLDING = re.compile(
    r"<<<|>>>|message from the public sender|\(untrusted\)|untrusted public|public_text"
    r"|<\||\|>|<start_of_turn|<end_of_turn|\{[a-z_]*\}|protocols:|\bcase lf-\d+:|\[p\d\]",
    re.I,
)
LOCATION_MAX = 160


def check_location(value: str) -> str:
    if _SCAFFOLDING.search(value):
        raise ValueError("not a place: it repeats the prompt; ask the sender where they are")
    if "\n" in value or len(value) > LOCATION_MAX:
        raise ValueError(
            f"a location is one line of at most {LOCATION_MAX} characters: a village, landmark "
            "or roof"
        )
    return value


Location = Annotated[str, AfterValidator(check_location)]


class DispatchArgs(ToolArgs):
    """An omitted argument means "not known": it never overwrites what the case already says."""

    location: Location = Field(
        min_length=2, description="Where the people are: village, landmark, roof"
    )
    priority: PriorityLabel | None = Field(None, description="critical = life in danger now")
    people_count: int | None = Field(
        None, ge=1, le=5000, description="How many people need help; omit if not known"
    )
    needs: str = Field("", max_length=300, description="What they need: rescue, medical, food…")


class NoArgs(ToolArgs):
    pass


CASE_CODE = r"(?i)^([A-Z][A-Z0-9]{1,7})?-?\d{4,8}$"  # LF-4821, BHO-4821 (a district's), 4821


class CaseArgs(ToolArgs):
    case: str = Field(pattern=CASE_CODE, description="Case code like LF-4821")


class ListArgs(ToolArgs):
    filter: Literal["open", "unassigned", "overdue"] = Field("open", description="Which cases")


class UpdateArgs(ToolArgs):
    case: str = Field(pattern=CASE_CODE, description="Case code like LF-4821")
    priority: PriorityLabel | None = Field(None, description="New priority")
    location: Location | None = Field(None, description="Corrected location")
    people_count: int | None = Field(None, ge=1, le=5000, description="Corrected head count")
    note: str | None = Field(None, max_length=300, description="Situation note for the case")
