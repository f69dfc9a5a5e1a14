"""How a training run ended: the one result type of the trainer and the search's evaluators.

A leaf without jax, so that the search driver (and a test's fake evaluator) can use it without
loading the trainer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

STATUSES = ("complete", "diverged", "failed")


@dataclasses.dataclass
class TrainResult:
    """How a run ended. `wall_time_s` is this call's wall time; `metrics` holds the last
    step's train metrics and the last evaluation's `val/*` (always for `complete`)."""

    status: str
    step: int
    metrics: dict[str, float]
    wall_time_s: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (status, step, metrics, wall_time_s, message)."""
        return dataclasses.asdict(self)
