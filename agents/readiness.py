"""Readiness: whether the worker can serve its partitions now.

A worker is **ready** when it has joined its consumer group, holds an assignment (at least one
active partition), is not rebalancing, and has restored every assigned table partition from its
changelog (Faust is not in recovery). ``GET /ready`` answers 200 then, 503 otherwise, naming
the first condition that fails and, during recovery, the changelog records left per changelog
partition (:func:`agents.faust_compat.recovery_remaining`).

:func:`decide` is the rule on plain values; :func:`readiness` reads them from a Faust app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from agents.faust_compat import in_recovery, recovery_remaining

#: the reasons of a worker that is not ready, in the order they are checked
NOT_JOINED, NO_ASSIGNMENT = "not_joined", "no_assignment"
REBALANCING, RECOVERING = "rebalancing", "recovering"


@dataclass(frozen=True)
class Readiness:
    """``status``: ``"ready"`` or the reason it is not; ``remaining``: changelog records left to
    restore, per ``"topic:partition"`` (every assigned changelog partition, 0 once restored)."""

    status: str
    remaining: dict[str, int] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    def body(self) -> dict[str, Any]:
        """The JSON answer of ``GET /ready``."""
        return {
            "status": self.status,
            "ready": self.ready,
            "remaining_records": sum(self.remaining.values()),
            "recovery": dict(sorted(self.remaining.items())),
        }


def decide(
    joined: bool, assigned: int, rebalancing: bool, recovering: bool, remaining: Mapping[TP, int]
) -> Readiness:
    """The rule: ``assigned`` is the number of active partitions assigned."""
    left = {f"{tp.topic}:{tp.partition}": records for tp, records in remaining.items()}
    if not joined:
        status = NOT_JOINED
    elif assigned == 0:
        status = NO_ASSIGNMENT
    elif recovering:
        status = RECOVERING
    elif rebalancing:
        status = REBALANCING
    else:
        status = "ready"
    return Readiness(status, left)


def readiness(app: faust.App) -> Readiness:
    """The readiness of a running Faust app (joined: a consumer generation was assigned)."""
    anyapp: Any = app
    generation = anyapp.consumer_generation_id
    joined = generation is not None and generation > 0
    assigned = len(app.assignor.assigned_actives())
    return decide(joined, assigned, bool(anyapp.rebalancing), in_recovery(app), recovery_remaining(app))
