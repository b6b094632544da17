"""Tool registry: pydantic args → flat JSON schema, role filter, argument repair, errors as results.

The model proposes; this module decides. A tool the sender's role may not use is neither offered
nor executed, whatever the message text claims. Every failure becomes a tool result the model can
read, never an exception out of the turn."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.models import Role

log = logging.getLogger(__name__)

A = TypeVar("A", bound=BaseModel)
C = TypeVar("C")


class ToolArgs(BaseModel):
    """Base for tool arguments: unknown keys are ignored (reported back), strings stripped."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


@dataclass(frozen=True)
class Tool(Generic[A, C]):
    name: str
    description: str
    args: type[A]
    roles: frozenset[Role]
    run: Callable[[C, A], Awaitable[dict[str, Any]]]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": flat_schema(self.args),
            },
        }


def flat_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Gemma 4 parses flat schemas best: type/enum/description/default only, no titles or refs.

    An optional field (``X | None``: ``anyOf`` with a null branch) is described by its other
    branch, so the model still sees its type and allowed values."""
    raw = model.model_json_schema()
    props: dict[str, Any] = {}
    for name, full in raw.get("properties", {}).items():
        branches = [b for b in full.get("anyOf", ()) if b.get("type") != "null"]
        spec = {**branches[0], **full} if len(branches) == 1 else full
        prop: dict[str, Any] = {}
        for key in ("type", "enum", "description"):
            if key in spec:
                prop[key] = spec[key]
        if "const" in spec:
            prop["enum"] = [spec["const"]]
        if "type" not in prop and "enum" in prop:
            prop["type"] = "string"
        props[name] = prop
    return {"type": "object", "properties": props, "required": raw.get("required", [])}


def repair_arguments(args: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Fix what small models get wrong: enum case, numbers as text ('5 people'), nulls."""
    schema = flat_schema(model)["properties"]
    fixed: dict[str, Any] = {}
    for key, value in args.items():
        spec = schema.get(key, {})
        if value is None:
            continue
        if "enum" in spec and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in spec["enum"]:
                value = lowered
        if spec.get("type") == "integer" and isinstance(value, str):
            digits = re.search(r"\d+", value)
            if digits:
                value = int(digits.group())
        if spec.get("type") == "string" and isinstance(value, (int, float)):
            value = str(value)
        fixed[key] = value
    return fixed


@dataclass
class ToolOutcome:
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]
    ok: bool


@dataclass
class ToolRegistry(Generic[C]):
    tools: list[Tool[Any, C]] = field(default_factory=list)

    def register(self, tool: Tool[Any, C]) -> None:
        """A name may appear twice only for disjoint roles (e.g. a victim's and a responder's
        get_incident_status take different arguments)."""
        for other in self.tools:
            if other.name == tool.name and other.roles & tool.roles:
                raise ValueError(f"duplicate tool {tool.name} for {other.roles & tool.roles}")
        self.tools.append(tool)

    def for_role(self, role: Role) -> list[Tool[Any, C]]:
        return [t for t in self.tools if role in t.roles]

    def schemas(self, role: Role) -> list[dict[str, Any]]:
        return [t.schema() for t in self.for_role(role)]

    async def call(self, name: str, arguments: Any, role: Role, ctx: C) -> ToolOutcome:
        raw = arguments if isinstance(arguments, dict) else {}
        tool = next((t for t in self.for_role(role) if t.name == name), None)
        if tool is None:
            if any(t.name == name for t in self.tools):
                log.warning("authority denied: role %s asked for tool %s", role.value, name)
                return self._error(name, raw, f"tool '{name}' is not permitted for this sender")
            available = [t.name for t in self.for_role(role)]
            return self._error(name, raw, f"unknown tool '{name}'", available=available)
        if not isinstance(arguments, dict):
            return self._error(name, raw, "arguments must be a JSON object")
        repaired = repair_arguments(raw, tool.args)
        try:
            parsed = tool.args.model_validate(repaired)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return self._error(name, raw, f"invalid arguments: {problems}")
        ignored = sorted(set(raw) - set(tool.args.model_fields))
        try:
            result = await tool.run(ctx, parsed)
        except ToolRefused as exc:
            return self._error(name, raw, str(exc))
        if ignored:
            result = {**result, "ignored_arguments": ignored}
        log.info("tool %s ok", name)
        return ToolOutcome(name, raw, result, ok=True)

    @staticmethod
    def _error(name: str, raw: dict[str, Any], message: str, **extra: Any) -> ToolOutcome:
        log.info("tool %s refused: %s", name, message)
        return ToolOutcome(name, raw, {"error": message, **extra}, ok=False)


class ToolRefused(Exception):
    """A tool declined for a reason the model should read (policy, missing data)."""


def result_text(outcome: ToolOutcome) -> str:
    return json.dumps(outcome.result, ensure_ascii=False, default=str)
