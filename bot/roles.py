"""Role policy: who may do what is decided by the configured Matrix IDs, nothing else.

SMS senders are always the public; on Matrix, `[matrix].coordinators` and `[matrix].responders`
list the staff (full Matrix IDs), and everyone else in a room or DM is the public."""

from __future__ import annotations

from bot.models import Channel, Role
from config.settings import MatrixSettings


def role_of(matrix: MatrixSettings, channel: Channel, peer: str) -> Role:
    if channel is Channel.MATRIX:
        if peer in matrix.coordinators:
            return Role.COORDINATOR
        if peer in matrix.responders:
            return Role.RESPONDER
    return Role.PUBLIC
