"""The predictor's fit: whole-model latency from block latencies, and the fit's held-out error.

A block timed alone is not the block inside a model: the interpreter's per-call cost, data
handed over in cache rather than read cold, layouts XNNPACK changes across block borders. How
much differs by kind of block (a 1x1-heavy inverted residual is not a decoder stage with its
resize), so the fit has one scale per block kind:

    predicted_ms = sum over kinds k of  w_k * S_k  +  offset_ms

`S_k` is the sum of the table's medians over the model's blocks of kind `k`. It is fitted on
whole models (the calibration points) by least squares on *relative* residuals (a 2 ms and a
60 ms model count alike, as the ±10 % acceptance does), with a ridge (`RIDGE`) pulling every
`w_k` toward one common scale, fitted first: a kind seen in few calibration models stays near
it instead of chasing noise, and a kind never seen gets it.

**Never in-sample.** The points are split into `FOLDS` folds (seeded); each fold has a fit made
without it. A model that is a calibration point is predicted by its fold's fit, every other
model by the fit on all points, so no prediction ever used its own measurement; the points'
out-of-fold errors are the table's recorded held-out error (`heldout`).

How this was chosen (experiments/benchmarks/latency_predictors.py, results in
experiments/benchmarks/results/latency_predictors.json): on the default table and 200 models
measured whole, fits on random calibration subsets were scored on the remaining models. The
per-kind ridge fit was the best or tied at every calibration size; a cost per block call or
the MACs as extra features of one global scale did less well (the package docstring has the
table).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas.errors import UserError

RIDGE = 0.1  # strength of the pull toward the common scale (scale-free: columns normalised)
FOLDS = 10  # cross-fitting folds (fewer when there are fewer points)


def kind_sums(keys: Sequence[str], entries: Mapping[str, dict]) -> dict[str, float]:
    """Sum of the median latencies (ms) of the blocks `keys`, by block kind."""
    out: dict[str, float] = {}
    for k in keys:
        e = entries[k]
        kind = str(e.get("kind") or k.split("@", 1)[0])
        out[kind] = out.get(kind, 0.0) + float(e["median_ms"])
    return out


def _check(sums: Sequence[Mapping[str, float]], measured: Sequence[float]) -> np.ndarray:
    y = np.asarray(measured, float)
    if len(sums) == 0 or len(sums) != len(y):
        raise UserError(
            f"calibration: got {len(sums)} block sums and {len(y)} measurements; "
            "allowed: one or more pairs"
        )
    totals = np.array([sum(s.values()) for s in sums])
    if np.any(y <= 0) or np.any(totals <= 0):
        raise UserError("calibration: got a non-positive latency; allowed: positive times")
    return y


def _common_scale(totals: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(scale, offset) of `y ≈ scale * total + offset` on relative residuals; one point, or
    points with one total, give the ratio alone."""
    if len(y) == 1 or np.ptp(totals) == 0:
        return float(np.mean(y / totals)), 0.0
    a = np.stack([totals, np.ones_like(totals)], axis=1) / y[:, None]
    (scale, offset), *_ = np.linalg.lstsq(a, np.ones_like(y), rcond=None)
    return float(scale), float(offset)


def fit(
    sums: Sequence[Mapping[str, float]], measured: Sequence[float], ridge: float = RIDGE
) -> dict[str, Any]:
    """`{"scale", "coef": {kind: w}, "offset_ms"}` fitted on paired points (see the module
    docstring); UserError with no point or a non-positive latency."""
    y = _check(sums, measured)
    kinds = sorted({k for s in sums for k in s})
    x = np.array([[s.get(k, 0.0) for k in kinds] for s in sums])
    scale, offset = _common_scale(x.sum(axis=1), y)
    coef = np.full(len(kinds), scale)
    if len(y) > 1 and np.ptp(x.sum(axis=1)) > 0:
        a = np.concatenate([x, np.ones((len(y), 1))], axis=1) / y[:, None]
        prior = np.append(coef, offset)
        norm = np.sqrt((a**2).mean(axis=0))
        norm[-1] = 0.0  # the offset is not pulled
        pull = np.sqrt(ridge * len(y)) * np.diag(norm)
        w, *_ = np.linalg.lstsq(
            np.vstack([a, pull]), np.concatenate([np.ones(len(y)), pull @ prior]), rcond=None
        )
        coef, offset = w[:-1], float(w[-1])
    return {
        "scale": round(scale, 6),
        "coef": {k: round(float(c), 6) for k, c in zip(kinds, coef, strict=True)},
        "offset_ms": round(offset, 6),
    }


def apply(f: Mapping[str, Any], sums: Mapping[str, float]) -> float:
    """A fit's prediction (ms) for a model's kind sums; kinds it never saw get its scale."""
    coef = f["coef"]
    return float(sum(coef.get(k, f["scale"]) * v for k, v in sums.items()) + f["offset_ms"])


def errors(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """n, within_5pct, within_10pct (fractions), median and max |error| (% of measured)."""
    e = np.abs(100.0 * (np.asarray(predicted, float) / np.asarray(measured, float) - 1.0))
    e = np.round(e, 9)  # 1.1 / 1.0 is 10.000000000000009 % off: within ±10 %
    return {
        "n": int(len(e)),
        "within_5pct": round(float(np.mean(e <= 5.0)), 4),
        "within_10pct": round(float(np.mean(e <= 10.0)), 4),
        "median_abs_pct_error": round(float(np.median(e)), 3),
        "max_abs_pct_error": round(float(np.max(e)), 3),
    }


def calibrate(
    ids: Sequence[str],
    sums: Sequence[Mapping[str, float]],
    measured: Sequence[float],
    folds: int = FOLDS,
    seed: int = 0,
    ridge: float = RIDGE,
) -> dict[str, Any]:
    """The fit on all points, one fit per fold made without that fold, and the points'
    out-of-fold error (`heldout`, absent with fewer than two points)."""
    y = _check(sums, measured)
    out: dict[str, Any] = {"model": "per-kind", "ridge": ridge, **fit(sums, y, ridge)}
    k = min(folds, len(y))
    if k < 2:
        return {**out, "n": len(y), "folds": []}
    order = list(range(len(y)))
    random.Random(seed).shuffle(order)
    parts = [sorted(order[i::k]) for i in range(k)]
    predicted = np.zeros(len(y))
    fold_fits = []
    for part in parts:
        rest = [i for i in range(len(y)) if i not in set(part)]
        f = fit([sums[i] for i in rest], y[rest], ridge)
        for i in part:
            predicted[i] = apply(f, sums[i])
        fold_fits.append({"ids": [ids[i] for i in part], **f})
    return {**out, "n": len(y), "folds": fold_fits, "heldout": errors(predicted, y)}


def fit_for(calibration: Mapping[str, Any], arch_id: str) -> Mapping[str, Any]:
    """The fit that predicts `arch_id`: its fold's when it is a calibration point, else the
    fit on all points."""
    for f in calibration.get("folds", ()):
        if arch_id in f["ids"]:
            return f
    return calibration
