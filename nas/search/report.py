"""Rendering a sweep from its study: `trials.jsonl`, `pareto.json`, the plots and the W&B summary.

`pareto.png` (matplotlib) and `pareto.html` (plotly, self-contained) plot mIoU against the
first cost objective, the front drawn as a staircase.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from nas.io import atomic_write
from nas.search.front import front, non_dominated, plot_axes
from nas.search.records import (
    _label,
    _num,
    describe,
    records,
    scores_of,
    summary_table,
    write_trials_jsonl,
)
from nas.search.spec import (
    LATENCY_PREFIX,
    MIOU,
    SearchSpec,
)
from nas.search.winners import export_winners, predictor_error


def front_staircase(
    x: np.ndarray, y: np.ndarray, x_max: bool, y_max: bool
) -> tuple[np.ndarray, np.ndarray]:
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


def plot_png(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    on_front: np.ndarray,
    *,
    x_label: str,
    y_label: str,
    x_max: bool,
    y_max: bool,
    title: str,
    labels: Sequence[str] = (),
) -> None:
    """A matplotlib scatter of all points with the front highlighted and its staircase drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    ax.scatter(x[~on_front], y[~on_front], c="#9aa5b1", s=30, label="other trials")
    ax.scatter(
        x[on_front],
        y[on_front],
        c="#d1495b",
        s=55,
        edgecolors="black",
        label="Pareto front",
        zorder=3,
    )
    sx, sy = front_staircase(x[on_front], y[on_front], x_max, y_max)
    ax.plot(sx, sy, c="#d1495b", lw=1.2, zorder=2)
    for i in np.flatnonzero(on_front):
        if i < len(labels) and labels[i]:
            ax.annotate(
                labels[i], (x[i], y[i]), textcoords="offset points", xytext=(5, 5), fontsize=7
            )
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_html(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    on_front: np.ndarray,
    *,
    x_label: str,
    y_label: str,
    x_max: bool,
    y_max: bool,
    title: str,
    hover: Sequence[str],
) -> None:
    """An interactive plotly scatter, self-contained (plotly.js inlined) so it opens offline."""
    import plotly.graph_objects as go

    hover = np.asarray(list(hover), dtype=object)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x[~on_front],
            y=y[~on_front],
            mode="markers",
            name="other trials",
            marker=dict(color="#9aa5b1", size=8),
            text=hover[~on_front],
            hoverinfo="text",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x[on_front],
            y=y[on_front],
            mode="markers",
            name="Pareto front",
            marker=dict(color="#d1495b", size=11, line=dict(color="black", width=1)),
            text=hover[on_front],
            hoverinfo="text",
        )
    )
    sx, sy = front_staircase(x[on_front], y[on_front], x_max, y_max)
    fig.add_trace(
        go.Scatter(
            x=sx,
            y=sy,
            mode="lines",
            name="front",
            hoverinfo="skip",
            line=dict(color="#d1495b", width=1),
        )
    )
    fig.update_layout(
        title=title, xaxis_title=x_label, yaxis_title=y_label, template="plotly_white"
    )
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)


def write_front(study: optuna.Study, spec: SearchSpec, workdir: Path) -> dict[str, Any]:
    """pareto.json, pareto.png and pareto.html; returns the front (with private keys)."""
    f = front(study, spec)
    public = {k: v for k, v in f.items() if not k.startswith("_")}
    public["reference_point_rule"] = (
        "fixed before the first trial: search.reference_point, else val/miou 0, a constrained "
        "objective's budget, else 1.1 x the worst value over a fixed seeded sample of the space"
        if f["reference_fixed"]
        else "a study older than fixed reference points: 1.1 x the worst value seen"
    )
    atomic_write(workdir / "pareto.json", json.dumps(public, indent=2, sort_keys=True) + "\n")
    cands, mask = f["_trials"], f["_mask"]
    x_name, y_name = plot_axes(spec)
    rows = [scores_of(t) for t in cands]
    x = np.array([r.get(x_name, math.nan) for r in rows], dtype=np.float64)
    y = np.array([r.get(y_name, math.nan) for r in rows], dtype=np.float64)
    labels = [f"#{t.number}" for t in cands]
    hover = [
        f"trial {t.number} ({t.user_attrs['arch_id']})<br>{describe(t.user_attrs['arch'])}"
        f"<br>{x_name} {_num(r.get(x_name))}, {y_name} {_num(r.get(y_name))}"
        for t, r in zip(cands, rows, strict=False)
    ]
    title = f"{spec.study_name}: {len(cands)} candidates, hypervolume {f['hypervolume']:.4g}"
    # The plotted front is the full-dimensional one (several objectives may hide behind x).
    axes = dict(
        x_label=_label(x_name),
        y_label=_label(y_name),
        x_max=x_name == MIOU,
        y_max=y_name == MIOU,
        title=title,
    )
    plot_png(workdir / "pareto.png", x, y, mask, **axes, labels=labels)
    plot_html(workdir / "pareto.html", x, y, mask, **axes, hover=hover)
    return f


def log_wandb_summary(
    study: optuna.Study, spec: SearchSpec, f: dict[str, Any], workdir: Path, wandb_cfg: Any
) -> str | None:
    """One W&B run for the whole sweep: a table of all trials, the mIoU-vs-cost scatter with the
    Pareto front marked, and the hypervolume over trials. Offline unless the config says
    `wandb.mode=online`; returns the local run folder (for `wandb sync`)."""
    mode = str(getattr(wandb_cfg, "mode", "offline") or "offline") if wandb_cfg else "offline"
    if mode == "disabled":
        return None
    import wandb

    x_name, y_name = plot_axes(spec)
    on_front = {t.number for t, on in zip(f["_trials"], f["_mask"], strict=False) if on}
    cols = [
        "trial",
        "state",
        "outcome",
        "arch_id",
        "arch",
        "feasible",
        "pareto",
        MIOU,
        x_name,
        *[o for o in spec.objectives if o not in (MIOU, x_name)],
        "params",
        "reason",
    ]
    cols = list(dict.fromkeys(cols))
    rows = []
    for r in records(study):
        s = {
            **r["costs"],
            **{LATENCY_PREFIX + k: v for k, v in r["latency_ms"].items()},
            MIOU: r["metrics"].get(MIOU),
        }
        rows.append(
            [
                r["number"],
                r["state"],
                r["outcome"],
                r["arch_id"],
                describe(r["arch"]),
                r["feasible"],
                r["number"] in on_front,
                *[s.get(c) for c in cols[7:-1]],
                r["reason"],
            ]
        )
    run = wandb.init(
        project=getattr(wandb_cfg, "project", None) or "segnas",
        entity=getattr(wandb_cfg, "entity", None) or None,
        group=spec.study_name,
        name=f"{spec.study_name}-summary",
        job_type="search-summary",
        dir=str(workdir),
        mode=mode,
        reinit="create_new",
        settings=wandb.Settings(console="off", silent=True),
        config={
            "search": spec.fingerprint(),
            "constraints": spec.constraints,
            "reference_point": f["reference_point"],
        },
    )
    try:
        run.define_metric("trial")
        run.define_metric("hypervolume", step_metric="trial")
        for h in f["hypervolume_history"]:
            run.log({"trial": h["trial"], "hypervolume": h["hypervolume"]})
        table = wandb.Table(columns=cols, data=rows)
        front_rows = [[r[cols.index(x_name)], r[cols.index(y_name)], r[0]] for r in rows if r[6]]
        front_table = wandb.Table(columns=[x_name, y_name, "trial"], data=front_rows)
        hv_table = wandb.Table(
            columns=["trial", "hypervolume"],
            data=[[h["trial"], h["hypervolume"]] for h in f["hypervolume_history"]],
        )
        run.log(
            {
                "trials": table,
                "scatter": wandb.plot.scatter(
                    table, x_name, y_name, title=f"{y_name} vs {x_name}, all trials"
                ),
                "pareto_front": wandb.plot.scatter(
                    front_table, x_name, y_name, title="Pareto front"
                ),
                "hypervolume_over_trials": wandb.plot.line(
                    hv_table, "trial", "hypervolume", title="hypervolume over trials"
                ),
                "pareto_plot": wandb.Image(str(workdir / "pareto.png")),
            }
        )
        run.summary["hypervolume"] = f["hypervolume"]
        run.summary["n_candidates"] = f["n_candidates"]
        run_dir = str(Path(run.dir).parent)
    finally:
        run.finish()
    return run_dir


def render(
    study: optuna.Study,
    spec: SearchSpec,
    workdir: Path,
    *,
    winners: bool = True,
    wandb_cfg: Any = None,
    log: Any = print,
) -> dict[str, Any]:
    """Every output of the workdir from the study; prints the summary table and hypervolume."""
    write_trials_jsonl(study, workdir)
    f = write_front(study, spec, workdir)
    numbers = {m["number"] for m in f["pareto"]}
    log(summary_table(study, spec, numbers))
    ref = ", ".join(f"{k} {_num(v)}" for k, v in f["reference_point"].items())
    log(
        f"\nPareto front: {len(numbers)} of {f['n_candidates']} feasible complete candidates; "
        f"hypervolume {f['hypervolume']:.6g} (reference point: {ref}"
        + ("" if f["reference_fixed"] else ", not fixed: compare only within this run")
        + ")"
    )
    if study.user_attrs.get("stop_reason"):
        log(f"the search ended early: {study.user_attrs['stop_reason']}")
    log(
        f"wrote {workdir / 'trials.jsonl'}, {workdir / 'pareto.json'}, "
        f"{workdir / 'pareto.png'}, {workdir / 'pareto.html'}"
    )
    result = {"front": f, "winners": [], "wandb_dir": None}
    if winners:
        result["winners"] = export_winners(f, spec, workdir)
        for w in result["winners"]:
            if "error" in w:
                log(f"winner #{w['number']} ({w['arch_id']}): not exported: {w['error']}")
            else:
                p = w.get("parity") or {}
                lat = w.get("latency") or {}
                pred = (
                    f" (predicted {lat['predicted_ms']:.2f} ms, {lat['error_pct']:+.1f} %)"
                    if lat.get("predicted_ms") is not None
                    else ""
                )
                log(
                    f"winner #{w['number']}: {w['tflite']} ({_num(w.get('bytes'))} bytes, "
                    f"LiteRT {w.get('latency_ms') or 0:.2f} ms measured{pred}, parity "
                    f"max_abs_diff {p.get('max_abs_diff')}, argmax agreement "
                    f"{p.get('argmax_agreement')})"
                )
        err = predictor_error(result["winners"])
        if err:
            log(
                f"latency predictor on the {err['n']} winner(s): median |error| "
                f"{err['median_abs_pct_error']:.1f} %, max {err['max_abs_pct_error']:.1f} % "
                f"({100 * err['within_10pct']:.0f} % within ±10 %)"
            )
        result["predictor_error"] = err
    if wandb_cfg is not None:
        result["wandb_dir"] = log_wandb_summary(study, spec, f, workdir, wandb_cfg)
    return result
