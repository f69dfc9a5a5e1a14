"""Trial outcomes: the Optuna state each one is told as, and what the sampler learns from it.

The table of outcomes (retried? counted? in the sampler's population? on the front?) is in the
`nas.search` package docstring and the README; this module is its code.
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from nas.search.spec import LATENCY_PREFIX, MIOU, SearchSpec

OUTCOMES = (
    "complete",
    "timeout",
    "diverged",
    "failed",
    "pruned",
    "killed",
    "infeasible",
    "duplicate",
)
# Failures of the candidate itself (not of its worker): capped by search.max_failures.
GENUINE_FAILURES = ("timeout", "diverged", "failed")
# The placeholder val/miou an infeasible trial is told: what a model that segments nothing
# scores. Constrained domination ranks infeasible trials by violation first, so it only orders
# infeasible trials with equal violations.
INFEASIBLE_MIOU = 0.0


def optuna_state(outcome: str) -> TrialState:
    """The state a trial with `outcome` is told as (see the table in `nas.search`)."""
    if outcome in ("complete", "infeasible"):
        return TrialState.COMPLETE
    if outcome == "pruned":
        return TrialState.PRUNED
    return TrialState.FAIL


def placeholder_values(spec: SearchSpec, scores: dict) -> list[float]:
    """The values an infeasible trial is told, in `spec.objectives` order: val/miou 0, and its
    predicted latencies and costs (known before training)."""
    out = []
    for o in spec.objectives:
        if o == MIOU:
            out.append(INFEASIBLE_MIOU)
        elif o.startswith(LATENCY_PREFIX):
            out.append(float(scores["latency_ms"][o[len(LATENCY_PREFIX) :]]))
        else:
            out.append(float(scores["costs"][o]))
    return out


def genuine_failures(trials: Sequence[FrozenTrial]) -> int:
    """How many of `trials` (counted trials, see nas.search.storage) failed by themselves."""
    return sum(t.user_attrs.get("outcome") in GENUINE_FAILURES for t in trials)


def is_candidate(t: FrozenTrial) -> bool:
    """Whether a trial can be on the front or a winner: complete, feasible, not a duplicate."""
    a = t.user_attrs
    return (
        t.state == TrialState.COMPLETE
        and a.get("outcome", "complete") == "complete"
        and a.get("feasible") is not False
    )
