"""The promises a drill checks, each a pure function of the :class:`Evidence` (evidence.py):
delivery promises in delivery.py, integrity promises in integrity.py, Matrix victims' media in
media.py. Budgets come from the scenario (``[promises]``) and, for acks, from the SIM send rate."""

from __future__ import annotations

from collections.abc import Callable

from bot.drill.checks.delivery import (
    ack_budgets,
    acked_in_time,
    critical_alerted,
    duplicates,
    nothing_lost,
    queue_drained,
)
from bot.drill.checks.evidence import Evidence, Result, Sent, Violation
from bot.drill.checks.integrity import (
    PERMANENT,
    conversation_order,
    facts_kept,
    no_transient_dead,
    staff_authority,
)
from bot.drill.checks.media import media_to_model, photo_located

__all__ = [
    "CHECKS",
    "PERMANENT",
    "Evidence",
    "Result",
    "Sent",
    "Violation",
    "ack_budgets",
    "acked_in_time",
    "conversation_order",
    "critical_alerted",
    "duplicates",
    "facts_kept",
    "media_to_model",
    "no_transient_dead",
    "nothing_lost",
    "photo_located",
    "queue_drained",
    "run_all",
    "staff_authority",
]

CHECKS: list[Callable[[Evidence], Result]] = [
    nothing_lost,
    acked_in_time,
    critical_alerted,
    no_transient_dead,
    facts_kept,
    staff_authority,
    conversation_order,
    duplicates,
    queue_drained,
    media_to_model,
    photo_located,
]


def run_all(ev: Evidence) -> list[Result]:
    return [check(ev) for check in CHECKS]
