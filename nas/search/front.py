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

Choice of the reference point (documented where the driver uses it, `nas.search.records`): a
fixed, worst-acceptable value per objective, so that hypervolumes of one study are comparable
over trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _as_minimisation(points: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != len(maximize):
        raise ValueError(f"points: got shape {pts.shape}; allowed: (n, {len(maximize)}) "
                         "matching the number of objectives")
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


def hypervolume(points: np.ndarray, maximize: Sequence[bool],
                reference: Sequence[float]) -> float:
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


def hypervolume_history(points: np.ndarray, maximize: Sequence[bool],
                        reference: Sequence[float]) -> list[float]:
    """Hypervolume of the first 1, 2, ..., n points: how the front grew trial after trial."""
    return [hypervolume(points[: i + 1], maximize, reference) for i in range(len(points))]


def front_staircase(x: np.ndarray, y: np.ndarray, x_max: bool,
                    y_max: bool) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D front of (x, y) as a staircase line, sorted by x (for plotting)."""
    pts = np.stack([x, y], axis=1)
    if len(pts) == 0:
        return np.zeros(0), np.zeros(0)
    front = pts[non_dominated(pts, [x_max, y_max])]
    front = front[np.argsort(front[:, 0])]
    xs, ys = [front[0, 0]], [front[0, 1]]
    for px, py in front[1:]:
        xs += [px, px]
        ys += [ys[-1], py]
    return np.asarray(xs), np.asarray(ys)


def plot_png(path: Path, x: np.ndarray, y: np.ndarray, on_front: np.ndarray,
             *, x_label: str, y_label: str, x_max: bool, y_max: bool, title: str,
             labels: Sequence[str] = ()) -> None:
    """A matplotlib scatter of all points with the front highlighted and its staircase drawn."""
    import matplotlib
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    ax.scatter(x[~on_front], y[~on_front], c="#9aa5b1", s=30, label="other trials")
    ax.scatter(x[on_front], y[on_front], c="#d1495b", s=55, edgecolors="black",
               label="Pareto front", zorder=3)
    sx, sy = front_staircase(x[on_front], y[on_front], x_max, y_max)
    ax.plot(sx, sy, c="#d1495b", lw=1.2, zorder=2)
    for i in np.flatnonzero(on_front):
        if i < len(labels) and labels[i]:
            ax.annotate(labels[i], (x[i], y[i]), textcoords="offset points", xytext=(5, 5),
                        fontsize=7)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_html(path: Path, x: np.ndarray, y: np.ndarray, on_front: np.ndarray,
              *, x_label: str, y_label: str, x_max: bool, y_max: bool, title: str,
              hover: Sequence[str]) -> None:
    """An interactive plotly scatter, self-contained (plotly.js inlined) so it opens offline."""
    import plotly.graph_objects as go

    hover = np.asarray(list(hover), dtype=object)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x[~on_front], y=y[~on_front], mode="markers",
                             name="other trials", marker=dict(color="#9aa5b1", size=8),
                             text=hover[~on_front], hoverinfo="text"))
    fig.add_trace(go.Scatter(x=x[on_front], y=y[on_front], mode="markers", name="Pareto front",
                             marker=dict(color="#d1495b", size=11,
                                         line=dict(color="black", width=1)),
                             text=hover[on_front], hoverinfo="text"))
    sx, sy = front_staircase(x[on_front], y[on_front], x_max, y_max)
    fig.add_trace(go.Scatter(x=sx, y=sy, mode="lines", name="front", hoverinfo="skip",
                             line=dict(color="#d1495b", width=1)))
    fig.update_layout(title=title, xaxis_title=x_label, yaxis_title=y_label,
                      template="plotly_white")
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
