"""What a search leaves in its workdir, always re-derived from the study (the sweep's memory).

- `trials.jsonl`: one line per trial: number, Optuna state (complete / failed / pruned /
  running / waiting), outcome (the table in the `nas.search` docstring; a duplicate says
  `reused_from`, a killed trial's retry says `retry_of`), reason, arch JSON and id, values
  (the objectives told; null for an infeasible trial, whose told values are placeholders),
  metrics, costs, predicted latencies, feasibility, `train` (status, step reached, step_budget,
  compile_s, train_s), timings, the hypervolume when it was told. Rewritten atomically after
  every trial, so an interrupted sweep never leaves it torn.
- `pareto.json`: the non-dominated feasible complete trials (one per architecture), the
  objectives and directions, the reference point and the hypervolume; `pareto.png` (matplotlib)
  and `pareto.html` (plotly, self-contained) plot mIoU against the first cost objective.
- a summary table (printed; ablations print it grouped by dimension, as seed 000's Table 1).

Reference point of the hypervolume, per objective unless `search.reference_point` sets it:
val/miou -> 0 (a model that segments nothing); a minimised objective with a constraint -> the
budget (what the user declared acceptable); without one -> 1.1 x the worst value among the
feasible complete trials (so every such trial counts). It is stored in pareto.json; compare
hypervolumes only under the same reference point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.io import atomic_write
from nas.search.spec import (
    LATENCY_PREFIX,
    MIOU,
    SearchSpec,
)
from nas.space.arch import Arch

STATE_NAMES = {
    TrialState.COMPLETE: "complete",
    TrialState.FAIL: "failed",
    TrialState.PRUNED: "pruned",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}


def scores(costs: dict, latency_ms: dict, metrics: dict) -> dict[str, float]:
    """The one home of a trial's scores: costs, predicted latencies and validation mIoU under
    objective names (params, latency/<target>, val/miou)."""
    out = dict(costs or {})
    out.update({LATENCY_PREFIX + k: v for k, v in (latency_ms or {}).items()})
    miou = (metrics or {}).get(MIOU)
    if miou is not None:
        out[MIOU] = miou
    return out


def scores_of(t: FrozenTrial) -> dict[str, float]:
    """The scores of a study's trial (`scores`)."""
    a = t.user_attrs
    return scores(a.get("costs"), a.get("latency_ms"), a.get("metrics"))


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    """The trials.jsonl record of one trial (fields in the module docstring)."""
    a = t.user_attrs
    end = t.datetime_complete
    return {
        "number": t.number,
        "state": STATE_NAMES.get(t.state, t.state.name.lower()),
        "outcome": a.get("outcome", "running" if t.state == TrialState.RUNNING else ""),
        "reason": a.get("reason", ""),
        "arch_id": a.get("arch_id"),
        "arch": a.get("arch"),
        "values": list(t.values) if t.values and a.get("outcome") != "infeasible" else None,
        "metrics": a.get("metrics", {}),
        "costs": a.get("costs", {}),
        "latency_ms": a.get("latency_ms", {}),
        "feasible": a.get("feasible"),
        "reused_from": a.get("reused_from"),
        "retry_of": t.system_attrs.get("failed_trial"),
        "train": a.get("train"),
        "timings": a.get("timings", {}),
        "hypervolume": a.get("hypervolume"),
        "worker": a.get("worker"),
        "trial_dir": a.get("trial_dir"),
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "finished": end.isoformat() if end else None,
        "duration_s": (end - t.datetime_start).total_seconds()
        if end and t.datetime_start
        else None,
    }


def records(study: optuna.Study) -> list[dict[str, Any]]:
    """Records of every non-skipped trial; a trial whose worker died is `killed` (and says
    which trial retried it)."""
    trials = study.get_trials(deepcopy=False)
    retried = {
        t.system_attrs["failed_trial"]: t.number for t in trials if "failed_trial" in t.system_attrs
    }
    out = []
    for t in trials:
        if t.user_attrs.get("skipped"):
            continue
        r = trial_record(t)
        if t.state == TrialState.FAIL and (t.number in retried or "outcome" not in t.user_attrs):
            later = retried.get(t.number)
            r["outcome"] = "killed"
            r["reason"] = "its worker died; " + (
                f"retried as trial {later}" if later is not None else "its retries ran out"
            )
        out.append(r)
    return out


def write_trials_jsonl(study: optuna.Study, workdir: Path) -> Path:
    """Rewrite `workdir/trials.jsonl` atomically from the study; returns its path."""
    path = workdir / "trials.jsonl"
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records(study)))
    return path


def _label(name: str) -> str:
    if name.startswith(LATENCY_PREFIX):
        return f"predicted latency on {name[len(LATENCY_PREFIX) :]} (ms)"
    return {MIOU: "validation mIoU", "bytes": "model bytes (fp32)"}.get(name, name)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}"
    return f"{int(v) / 1e6:.2f}M" if abs(v) >= 1e5 else f"{v:g}"


def describe(arch: dict[str, Any] | None) -> str:
    """The label of a stored arch dict (`Arch.label`); "?" for none."""
    if not arch:
        return "?"
    try:
        return Arch.from_dict(arch).label()
    except ValueError:  # a record no segnas arch reads any more
        return "?"


def trial_line(t: FrozenTrial, spec: SearchSpec) -> str:
    """One line per finished trial, for the live display."""
    r = trial_record(t)
    outcome = r["outcome"] + (f" (as #{r['reused_from']})" if r["reused_from"] is not None else "")
    scores = scores_of(t)
    shown = [
        f"{k} {_num(scores.get(k))}" for k in dict.fromkeys((MIOU, *spec.objectives)) if k in scores
    ]
    took = f" {r['duration_s']:.0f}s" if r["duration_s"] is not None else ""
    if r["outcome"] == "complete" and r["hypervolume"] is not None:
        shown.append(f"hypervolume {r['hypervolume']:.4g}")  # of the front with this trial
    reason = f"  [{r['reason']}]" if r["reason"] and r["outcome"] != "complete" else ""
    return (
        f"trial {t.number:3d} {outcome:<10s} {describe(r['arch']):<52s} "
        f"{'  '.join(shown)}{took}{reason}"
    )


def record_scores(r: dict[str, Any]) -> dict[str, float]:
    """The scores of a trials.jsonl record (`scores`)."""
    return scores(r["costs"], r["latency_ms"], r["metrics"])


def summary_table(
    study: optuna.Study, spec: SearchSpec, front_numbers: set[int] = frozenset()
) -> str:
    """One row per trial (killed trials and duplicates are left to trials.jsonl);
    an ablation groups rows by the dimension varied, the baseline repeated in each group."""
    cols = list(dict.fromkeys((MIOU, *spec.objectives, "params")))
    head = ["#", "outcome", "arch", *cols, "front", "note"]
    recs = [r for r in records(study) if r["outcome"] not in ("killed", "duplicate")]

    def row(r: dict[str, Any], mark: str = "") -> list[str]:
        sc = record_scores(r)
        note = f"as #{r['reused_from']}" if r["reused_from"] is not None else r["reason"]
        return [
            str(r["number"]),
            r["outcome"],
            describe(r["arch"]) + mark,
            *[_num(sc.get(c)) for c in cols],
            "*" if r["number"] in front_numbers else "",
            note[:70],
        ]

    body: list[list[str] | str] = []
    if spec.strategy == "ablation":
        by_id = {r["arch_id"]: r for r in reversed(recs)}
        for dim in spec.space.searched():
            body.append(f"-- {dim}")
            for value in spec.space.values(dim):
                arch_id = spec.baseline.with_values({dim: value}).id
                if arch_id in by_id:
                    body.append(row(by_id[arch_id], " *" if arch_id == spec.baseline.id else ""))
    else:
        body = [row(r) for r in recs]
    table = [head, *[r for r in body if isinstance(r, list)]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = [
        r
        if isinstance(r, str)
        else "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()
        for r in [head, *body]
    ]
    return "\n".join(lines)
