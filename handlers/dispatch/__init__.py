"""Dispatch: the model's dispatch tools, coordinators' decisions and the approval policy. The
model may *request*; approval follows config; people decide (``!approve``, ``!reject`` …).

One responsibility a module: ``tool_args`` (tool arguments), ``tools`` (the model's tools),
``teams`` (team inventory), ``notices`` (alerts and the reporter's notices), ``transition`` (the
one load → check → change → audit → notify shape of a decision), ``decisions`` (approve/assign)
and ``case_commands`` (reject, arrived, resolve, priority, people)."""

from handlers.dispatch.case_commands import arrived, reject, resolve, set_people, set_priority
from handlers.dispatch.decisions import approve, assign
from handlers.dispatch.notices import alert_text, tell_victim, victim_text
from handlers.dispatch.teams import SERVES, needs_approval, team_kind
from handlers.dispatch.tool_args import (
    CaseArgs,
    DispatchArgs,
    ListArgs,
    NoArgs,
    UpdateArgs,
    check_location,
)
from handlers.dispatch.tools import (
    RESPONDER_TOOLS,
    STAFF,
    VICTIM_TOOLS,
    case_for_model,
    incident_summary,
    select_cases,
)
from handlers.dispatch.transition import DecisionError

__all__ = [
    "RESPONDER_TOOLS",
    "SERVES",
    "STAFF",
    "VICTIM_TOOLS",
    "CaseArgs",
    "DecisionError",
    "DispatchArgs",
    "ListArgs",
    "NoArgs",
    "UpdateArgs",
    "alert_text",
    "approve",
    "arrived",
    "assign",
    "case_for_model",
    "check_location",
    "incident_summary",
    "needs_approval",
    "reject",
    "resolve",
    "select_cases",
    "set_people",
    "set_priority",
    "team_kind",
    "tell_victim",
    "victim_text",
]
