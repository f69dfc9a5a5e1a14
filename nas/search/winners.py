"""The winners of a sweep: the Pareto members exported to `WORKDIR/winners/` with their reports.

Every search checks its latency predictor on its winners: when the sweep scores `litert-cpu`
from a table of the program a winner is exported as (float32, the table's output, one thread,
the exporter's setting), the winner's report holds the table's `latency.predicted_ms` (the
value the search ranked it by) beside the `latency.measured_ms` of the exported file, both on
the timing protocol of `nas/latency/measure.py`: the file is timed among the table's
calibration models of about its predicted latency (7 at a time, five draws; "Anchors" in
`nas/latency/context.py`), or among other archs of the sweep's space when the table has no
calibration, and `measured_ms` is on the table's scale (`median_ms` is the raw figure).
`predictor_error` summarises the winners.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from nas.errors import UserError
from nas.io import atomic_write
from nas.search.front import plot_axes
from nas.search.records import scores_of
from nas.search.spec import (
    SearchSpec,
)


def pick_winners(f: dict[str, Any], spec: SearchSpec) -> list[FrozenTrial]:
    """Up to `winners.max_count` Pareto members, spread evenly along the plot's x axis (so the
    cheapest, the most accurate and trade-offs between are all exported)."""
    members = [t for t, on in zip(f["_trials"], f["_mask"], strict=False) if on]
    k = spec.winners_max
    if k <= 0 or not members:
        return []
    x_name, _ = plot_axes(spec)
    members.sort(key=lambda t: scores_of(t).get(x_name, math.inf))
    if len(members) <= k:
        return members
    picks = (
        sorted({round(i * (len(members) - 1) / (k - 1)) for i in range(k)})
        if k > 1
        else [len(members) - 1]
    )
    return [members[i] for i in picks]


CHECKED_TARGET = "litert-cpu"  # the target the exporter measures (LiteRT, XNNPACK, 1 thread)


def comparable_prediction(t: FrozenTrial, spec: SearchSpec) -> tuple[float | None, Any]:
    """The trial's predicted `litert-cpu` latency and its table, when the export measures the
    same program (float32, the table's output, one thread); else None, None."""
    predicted = (t.user_attrs.get("latency_ms") or {}).get(CHECKED_TARGET)
    path = spec.latency_tables.get(CHECKED_TARGET)
    if predicted is None or path is None or spec.winners_quantize != "none":
        return None, None
    from nas.latency import load_table

    try:
        table = load_table(path)
    except UserError:
        return None, None
    if table.threads != 1 or table.settings.get("output", "logits") != spec.winners_output:
        return None, None
    return float(predicted), table


def timing_plan(arch: Any, predicted: float | None, table: Any, spec: SearchSpec) -> dict:
    """`export_candidate`'s timing arguments for a winner: among the table's calibration
    models of about the predicted latency (anchors) when it has them, else among the sweep's
    own archs; on the table's scale when there is a table."""
    from nas.latency import context

    points = ((table.calibration or {}).get("points") or []) if table is not None else []
    if predicted is not None and len(points) > 1:
        sets, anchors = context.anchor_sets(arch, points, predicted)
    else:
        sets, anchors = context.companion_sets(arch, spec.space), None
    reference = (table.reference or {}).get("median_ms") if table is not None else None
    return {"companion_sets": sets, "anchors": anchors, "reference_ms": reference}


def predictor_error(winners: list[dict[str, Any]]) -> dict[str, Any] | None:
    """n, median and max |predicted / measured - 1| (%) over the winners that have both."""
    pairs = [
        (w["latency"]["predicted_ms"], w["latency"]["measured_ms"])
        for w in winners
        if (w.get("latency") or {}).get("predicted_ms") is not None
    ]
    if not pairs:
        return None
    errs = sorted(abs(100 * (p / m - 1)) for p, m in pairs)
    return {
        "n": len(errs),
        "median_abs_pct_error": round(errs[len(errs) // 2], 2),
        "max_abs_pct_error": round(errs[-1], 2),
        "within_10pct": round(sum(e <= 10 for e in errs) / len(errs), 4),
    }


def export_winners(f: dict[str, Any], spec: SearchSpec, workdir: Path) -> list[dict[str, Any]]:
    """`winners/<arch id>.tflite` + report JSON for each picked Pareto member (kept if already
    exported); a member that cannot be exported is listed with its error, the rest go on."""
    picks = pick_winners(f, spec)
    if not picks:
        return []
    out_dir = workdir / "winners"
    out_dir.mkdir(exist_ok=True)
    done = []
    for t in picks:
        arch_id = t.user_attrs["arch_id"]
        out = out_dir / f"{arch_id}.tflite"
        entry: dict[str, Any] = {
            "number": t.number,
            "arch_id": arch_id,
            "tflite": str(out),
            "values": dict(zip(spec.objectives, t.values, strict=False)),
        }
        if out.exists() and out.with_suffix(".json").exists():
            report = json.loads(out.with_suffix(".json").read_text())
        else:
            try:
                from nas.export.policy import export_candidate, load_run

                arch, variables, data_cfg = load_run(workdir / t.user_attrs["trial_dir"])
                predicted, table = comparable_prediction(t, spec)
                report = export_candidate(
                    arch,
                    variables,
                    out,
                    quantize=spec.winners_quantize,
                    output=spec.winners_output,
                    data_cfg=data_cfg,
                    predicted_ms=predicted,
                    **timing_plan(arch, predicted, table, spec),
                )
            except (UserError, ValueError, OSError, KeyError) as e:
                entry["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
                done.append(entry)
                continue
        entry.update(
            report=str(out.with_suffix(".json")),
            parity=report.get("parity"),
            latency_ms=report.get("latency_ms"),
            latency={
                k: v
                for k, v in (report.get("latency") or {}).items()
                if k in ("predicted_ms", "measured_ms", "error_pct", "clock", "median_ms")
            },
            bytes=report.get("bytes"),
        )
        done.append(entry)
    atomic_write(out_dir / "winners.json", json.dumps(done, indent=2, sort_keys=True) + "\n")
    return done
