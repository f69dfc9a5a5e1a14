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

Choice of the reference point (`fixed_reference` below): fixed before the first trial, per
objective, from the config, else a budget, else the worst value over a fixed, seeded sample of
the space; stored in the study and in pareto.json, so hypervolumes are comparable over trials
and across runs of one space (given the same latency table). The history (hypervolume after
each trial, in the order trials finished) is recorded live by the driver.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.outcomes import is_candidate
from nas.search.records import scores_of
from nas.search.spec import MIOU, SearchSpec, arch_from_params
from nas.space.arch import Arch
from nas.space.encoding import params_of

REFERENCE_ATTR = "reference_point"  # study user_attr: {objective: value}, set before trial 0


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
    """Feasible complete trials, one per architecture (its earliest trial), in trial order;
    infeasible trials (told placeholder values) and duplicates are never among them."""
    seen: set[str] = set()
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if not is_candidate(t) or t.user_attrs.get("arch_id") in seen:
            continue
        seen.add(t.user_attrs.get("arch_id"))
        out.append(t)
    return out


# The fixed sample of the space whose worst values set an unset reference: the same archs
# (seed 0, whatever search.seed is) for every run of one space, so hypervolumes of two runs are
# comparable when their latency tables agree.
REFERENCE_SAMPLE, REFERENCE_SEED, REFERENCE_MARGIN = 32, 0, 1.1


def reference_sample(spec: SearchSpec) -> list[Arch]:
    """The whole space when it has at most REFERENCE_SAMPLE archs, else that many distinct
    archs drawn with REFERENCE_SEED."""
    if spec.space.size() <= REFERENCE_SAMPLE:
        archs = list(spec.space.grid())
    else:
        rng, found = random.Random(REFERENCE_SEED), {}
        while len(found) < REFERENCE_SAMPLE:
            a = Arch.sample(spec.space, rng)
            found.setdefault(a.id, a)
        archs = list(found.values())
    return [arch_from_params(params_of(a, spec.space), spec) for a in archs]


def fixed_reference(
    spec: SearchSpec,
    score: Callable[[Arch, Sequence[str]], dict[str, float]],
    stored: dict[str, float] | None = None,
) -> dict[str, float]:
    """The hypervolume's reference point, fixed before the first trial, per objective:
    `search.reference_point` when set; val/miou -> 0 (a model that segments nothing); a
    constrained objective -> its budget (what the user declared acceptable); otherwise
    REFERENCE_MARGIN x its worst value over `reference_sample` (`stored`, the study's own,
    when it has one, so a continued study keeps it). `score(arch, names)` gives an arch's
    predicted latencies / costs under objective names."""
    ref: dict[str, float] = {}
    sampled = []
    for name in spec.objectives:
        if name in spec.reference_point:
            ref[name] = float(spec.reference_point[name])
        elif name == MIOU:
            ref[name] = 0.0
        elif name in spec.constraints:
            ref[name] = float(spec.constraints[name])
        elif stored and name in stored:
            ref[name] = float(stored[name])
        else:
            sampled.append(name)
    if sampled:
        values = [score(a, sampled) for a in reference_sample(spec)]
        for name in sampled:
            ref[name] = REFERENCE_MARGIN * max(float(v[name]) for v in values)
    return {name: ref[name] for name in spec.objectives}


def reference_point(spec: SearchSpec, points: np.ndarray) -> list[float]:
    """The reference of a study that predates fixed references: as set, else 0, the budget or
    1.1 x the worst value seen (not comparable across runs)."""
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
    stored = study.user_attrs.get(REFERENCE_ATTR)
    fixed = stored is not None and list(stored) == list(spec.objectives)
    ref = [stored[o] for o in spec.objectives] if fixed else reference_point(spec, points)
    hv = hypervolume(points, spec.maximize, ref)
    history = live_history(study, spec, cands, points, ref)
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
        "reference_fixed": fixed,
        "hypervolume": hv,
        "hypervolume_history": history,
        "n_candidates": len(cands),
        "pareto": members,
        "_trials": cands,
        "_mask": mask,
    }


def live_history(
    study: optuna.Study,
    spec: SearchSpec,
    cands: list[FrozenTrial],
    points: np.ndarray,
    ref: Sequence[float],
) -> list[dict[str, Any]]:
    """The hypervolume after each finished trial, in the order trials finished: the value the
    driver recorded when it told the trial (user_attr `hypervolume`), else recomputed."""
    done = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and not t.user_attrs.get("skipped") and t.datetime_complete
    ]
    done.sort(key=lambda t: (t.datetime_complete, t.number))
    rank = {t.number: i for i, t in enumerate(done)}
    out = []
    for t in done:
        hv = t.user_attrs.get("hypervolume")
        if hv is None:  # a trial told before live recording: its front at that moment
            mine = [j for j, c in enumerate(cands) if rank.get(c.number, -1) <= rank[t.number]]
            hv = hypervolume(points[mine], spec.maximize, ref) if mine else 0.0
        out.append({"trial": t.number, "hypervolume": float(hv)})
    return out


def hypervolume_with(
    study: optuna.Study, spec: SearchSpec, ref: Sequence[float], extra: Sequence[float] | None
) -> float:
    """The hypervolume of the study's candidates plus `extra` (the values of a trial about to
    be told), under `ref`: what the driver records live on each trial."""
    rows = [list(t.values) for t in candidates(study)]
    if extra is not None:
        rows.append(list(extra))
    points = np.array(rows, dtype=np.float64).reshape(len(rows), len(spec.objectives))
    return hypervolume(points, spec.maximize, ref)


def plot_axes(spec: SearchSpec) -> tuple[str, str]:
    """(x, y) of the 2-D plot: y is mIoU when it is an objective, x the first other objective
    (params when mIoU is the only one)."""
    others = [o for o in spec.objectives if o != MIOU]
    if MIOU in spec.objectives:
        return (others[0] if others else "params"), MIOU
    return others[0], (others[1] if len(others) > 1 else "params")
