"""The tool declarations are part of the static prompt (Gemma 4's template renders them right
after the system text): each tool's schema must tell the model every argument's type and allowed
values, the optional ones (``X | None``) included, and be the same on every call."""

from __future__ import annotations

import json
from typing import Any

from bot.models import Role
from bot.tools import ToolRegistry, flat_schema, repair_arguments
from handlers.context import TurnContext
from handlers.dispatch import RESPONDER_TOOLS, VICTIM_TOOLS
from handlers.dispatch.tool_args import DispatchArgs, UpdateArgs

PRIORITIES = ["critical", "high", "medium", "low"]


def registry() -> ToolRegistry[TurnContext]:
    reg: ToolRegistry[TurnContext] = ToolRegistry()
    for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
        reg.register(tool)
    return reg


def test_every_argument_of_every_tool_has_a_type_and_optional_enums_keep_their_values() -> None:
    for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
        for name, prop in flat_schema(tool.args)["properties"].items():
            assert prop.get("type") in ("string", "integer", "number", "boolean"), (tool.name, name)
            assert set(prop) <= {"type", "enum", "description"}, (tool.name, name, prop)
    dispatch = flat_schema(DispatchArgs)["properties"]
    assert dispatch["priority"] == {
        "type": "string",
        "enum": PRIORITIES,
        "description": "critical = life in danger now",
    }
    assert dispatch["people_count"]["type"] == "integer"
    assert flat_schema(UpdateArgs)["properties"]["priority"]["enum"] == PRIORITIES


def test_optional_arguments_are_repaired_like_required_ones() -> None:
    raw: dict[str, Any] = {"location": "roof", "priority": "CRITICAL", "people_count": "5 people"}
    assert repair_arguments(raw, DispatchArgs) == {
        "location": "roof",
        "priority": "critical",
        "people_count": 5,
    }
    DispatchArgs.model_validate(repair_arguments(raw, DispatchArgs))


def test_the_tool_list_is_the_same_on_every_call_in_registration_order() -> None:
    reg = registry()
    for role, names in (
        (Role.PUBLIC, ["dispatch_rescue_team", "get_incident_status"]),
        (Role.RESPONDER, ["list_open_incidents", "update_incident", "get_incident_status"]),
    ):
        first = json.dumps(reg.schemas(role))
        assert [t["function"]["name"] for t in reg.schemas(role)] == names
        assert all(json.dumps(registry().schemas(role)) == first for _ in range(3))
    assert json.dumps(reg.schemas(Role.COORDINATOR)) == json.dumps(reg.schemas(Role.RESPONDER))
