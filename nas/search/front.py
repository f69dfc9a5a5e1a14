"""Pareto fronts for mixed maximise / minimise objectives: non-dominated sets, hypervolume, plots.

Pure functions over a points array of shape (n, k) and a `maximize` flag per objective column;
the search driver feeds them the trials of a study, tests feed them hand-made points.

Hypervolume: the volume of objective space dominated by the points and bounded by a reference
point. Internally every column is turned into a minimisation (maximised columns are negated, and
so is their reference), and only points strictly better than the reference in every column
contribute. The computation is exact for any k by *slicing objectives* (HSO, While et al.
2006): sort by the last column and sum, slab by slab, the (k-1)-dimensional hypervolume of the
points that reach into the slab; with k = 2 this is the usual staircase sweep. Cost grows like
n^(k-1) log n, which is nothing for the tens to hundreds of candidates a search trains.

Choice of the reference point (documented where the driver uses it, `reference_point` below): a
fixed, worst-acceptable value per objective, so that hypervolumes of one study are comparable
over trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.records import scores_of
from nas.search.spec import (
    MIOU,
    SearchSpec,
)


def _as_minimisation(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != len(maximize):
        raise ValueError(
            f"points: got shape {pts.shape}; allowed: (n, {len(maximize)}) "
            "matching the number of objectives"
        )
    sign = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    return pts * sign


def dominates(a: Sequence[float], b: Sequence[float], maximize: Sequence[bool]) -> bool:
    """True when `a` is at least as good as `b` everywhere and strictly better somewhere."""
    x, y = _as_minimisation(np.array([a, b]), maximize)
    return bool(np.all(x <= y) and np.any(x < y))


def non_dominated(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the points no other point dominates.

    Equal points do not dominate each other, so duplicates of a front member are all kept (the
    driver removes repeated architectures before calling this).
    """
    pts = _as_minimisation(points, maximize)
    n = len(pts)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        better_eq = np.all(pts <= pts[i], axis=1)
        strictly = np.any(pts < pts[i], axis=1)
        mask[i] = not np.any(better_eq & strictly)
    return mask


def _hv_min(pts: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimisation points (all strictly below `ref`) by slicing."""
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    order = np.argsort(pts[:, -1], kind="stable")
    pts = pts[order]
    total = 0.0
    # Slab j spans [pts[j, -1], next distinct value or ref); the points reaching into it are
    # pts[:j + 1], whose projection on the first k-1 columns gives the slab's cross-section.
    for j in range(len(pts)):
        top = pts[j + 1, -1] if j + 1 < len(pts) else ref[-1]
        depth = top - pts[j, -1]
        if depth > 0:
            total += depth * _hv_min(pts[: j + 1, :-1], ref[:-1])
    return total


def hypervolume(points: np.ndarray, maximize: Sequence[bool], reference: Sequence[float]) -> float:
    """Hypervolume dominated by `points` up to `reference` (same units as the objectives).

    Points not strictly better than the reference in every objective add nothing. An empty set
    has hypervolume 0.
    """
    pts = _as_minimisation(points, maximize) if len(points) else np.zeros((0, len(maximize)))
    ref = _as_minimisation(np.asarray([reference], dtype=np.float64), maximize)[0]
    inside = np.all(pts < ref, axis=1)
    pts = pts[inside]
    if len(pts) == 0:
        return 0.0
    pts = pts[non_dominated(pts, [False] * pts.shape[1])]
    return _hv_min(pts, ref)


def hypervolume_history(
    points: np.ndarray, maximize: Sequence[bool], reference: Sequence[float]
) -> list[float]:
    """Hypervolume of the first 1, 2, ..., n points: how the front grew trial after trial."""
    return [hypervolume(points[: i + 1], maximize, reference) for i in range(len(points))]


def candidates(study: optuna.Study) -> list[FrozenTrial]:
    """Feasible complete trials, one per architecture (its earliest trial), in trial order."""
    seen: set[str] = set()
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("feasible") is False or t.user_attrs.get("arch_id") in seen:
            continue
        seen.add(t.user_attrs.get("arch_id"))
        out.append(t)
    return out


def reference_point(spec: SearchSpec, points: np.ndarray) -> list[float]:
    """The hypervolume reference per objective: as set, else 0, the budget or 1.1 x worst."""
    ref = []
    for j, name in enumerate(spec.objectives):
        if name in spec.reference_point:
            ref.append(spec.reference_point[name])
        elif name == MIOU:
            ref.append(0.0)
        elif name in spec.constraints:
            ref.append(spec.constraints[name])
        else:
            ref.append(1.1 * float(points[:, j].max()) if len(points) else 1.0)
    return ref


def front(study: optuna.Study, spec: SearchSpec) -> dict[str, Any]:
    """The non-dominated set, reference point, hypervolume and its growth over trials."""
    cands = candidates(study)
    points = np.array([list(t.values) for t in cands], dtype=np.float64).reshape(
        len(cands), len(spec.objectives)
    )
    mask = non_dominated(points, spec.maximize) if len(cands) else np.zeros(0, bool)
    ref = reference_point(spec, points)
    hv = hypervolume(points, spec.maximize, ref)
    history = hypervolume_history(points, spec.maximize, ref)
    members = []
    for t, on in zip(cands, mask, strict=False):
        if on:
            members.append(
                {
                    "number": t.number,
                    "arch_id": t.user_attrs["arch_id"],
                    "arch": t.user_attrs["arch"],
                    "values": dict(zip(spec.objectives, t.values, strict=False)),
                    "scores": scores_of(t),
                    "trial_dir": t.user_attrs.get("trial_dir"),
                }
            )
    return {
        "study": spec.study_name,
        "objectives": list(spec.objectives),
        "directions": spec.directions,
        "constraints": spec.constraints,
        "reference_point": dict(zip(spec.objectives, ref, strict=False)),
        "hypervolume": hv,
        "hypervolume_history": [
            {"trial": t.number, "hypervolume": h} for t, h in zip(cands, history, strict=False)
        ],
        "n_candidates": len(cands),
        "pareto": members,
        "_trials": cands,
        "_mask": mask,
    }


def plot_axes(spec: SearchSpec) -> tuple[str, str]:
    """(x, y) of the 2-D plot: y is mIoU when it is an objective, x the first other objective
    (params when mIoU is the only one)."""
    others = [o for o in spec.objectives if o != MIOU]
    if MIOU in spec.objectives:
        return (others[0] if others else "params"), MIOU
    return others[0], (others[1] if len(others) > 1 else "params")
