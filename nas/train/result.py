"""How a training run ended: the one result type of the trainer and the search's evaluators.

A leaf without jax, so that the search driver (and a test's fake evaluator) can use it without
loading the trainer.

Statuses: `complete` (the step budget was reached, or a resumed finished run was scored again,
or `on_eval` asked to stop), `timeout` (the wall-clock safety net `train.max_minutes` stopped
it before its step budget), `diverged` (a non-finite loss or gradient), `failed` (any other
exception during training).
"""

from __future__ import annotations

import dataclasses
from typing import Any

STATUSES = ("complete", "timeout", "diverged", "failed")


@dataclasses.dataclass
class TrainResult:
    """How a run ended. `wall_time_s` is this call's wall time; `metrics` holds the last
    step's train metrics and the last evaluation's `val/*` (always for `complete`).

    Budget bookkeeping (what the search records per candidate): `step` is the step reached,
    `step_budget` the step count it was asked for (`train.steps`; 0 when unknown, e.g. a
    user's evaluator that does not say), `compile_s` the seconds spent compiling its steps in
    this call (never charged to `train.max_minutes`), `train_s` the seconds spent training and
    evaluating, accumulated over restarts (what `train.max_minutes` caps).
    """

    status: str
    step: int
    metrics: dict[str, float]
    wall_time_s: float = 0.0
    message: str = ""
    step_budget: int = 0
    compile_s: float = 0.0
    train_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (every field above)."""
        return dataclasses.asdict(self)
