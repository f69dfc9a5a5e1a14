"""What a search leaves in its workdir, always re-derived from the study (the sweep's memory).

- `trials.jsonl`: one line per trial: number, state (complete / failed / pruned / running /
  waiting), outcome (complete, infeasible, pruned, diverged, failed, reused ones say
  `reused_from`), reason, arch JSON and id, metrics, costs, predicted latencies, feasibility,
  timings. Rewritten atomically after every trial, so an interrupted sweep never leaves it torn.
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
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search import front as pareto
from nas.search import storage as st
from nas.search.spec import LATENCY_PREFIX, MIOU, SearchSpec

STATE_NAMES = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed",
               TrialState.PRUNED: "pruned", TrialState.RUNNING: "running",
               TrialState.WAITING: "waiting"}


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scores_of(t: FrozenTrial) -> dict[str, float]:
    """Every scalar a trial has, under objective names (val/miou, latency/<t>, params...)."""
    out = dict(t.user_attrs.get("costs") or {})
    out.update({LATENCY_PREFIX + k: v for k, v in (t.user_attrs.get("latency_ms") or {}).items()})
    miou = (t.user_attrs.get("metrics") or {}).get(MIOU)
    if miou is not None:
        out[MIOU] = miou
    return out


def trial_record(t: FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    end = t.datetime_complete
    return {
        "number": t.number, "state": STATE_NAMES.get(t.state, t.state.name.lower()),
        "outcome": a.get("outcome", "running" if t.state == TrialState.RUNNING else ""),
        "reason": a.get("reason", ""), "arch_id": a.get("arch_id"), "arch": a.get("arch"),
        "values": list(t.values) if t.values else None, "metrics": a.get("metrics", {}),
        "costs": a.get("costs", {}), "latency_ms": a.get("latency_ms", {}),
        "feasible": a.get("feasible"), "reused_from": a.get("reused_from"),
        "retry_of": t.system_attrs.get("failed_trial"), "train": a.get("train"),
        "timings": a.get("timings", {}), "worker": a.get("worker"),
        "trial_dir": a.get("trial_dir"),
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "finished": end.isoformat() if end else None,
        "duration_s": (end - t.datetime_start).total_seconds() if end and t.datetime_start
        else None,
    }


def records(study: optuna.Study) -> list[dict[str, Any]]:
    trials = study.get_trials(deepcopy=False)
    retried = st.retried_numbers(trials)
    out = []
    for t in trials:
        if t.user_attrs.get("skipped"):
            continue
        r = trial_record(t)
        if t.number in retried and t.state == TrialState.FAIL:
            r["outcome"], r["reason"] = "retried", "worker stopped; the architecture was retried"
        out.append(r)
    return out


def write_trials_jsonl(study: optuna.Study, workdir: Path) -> Path:
    path = workdir / "trials.jsonl"
    atomic_write(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records(study)))
    return path


# -- the front --------------------------------------------------------------------------------
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


def plot_axes(spec: SearchSpec) -> tuple[str, str]:
    """(x, y) of the 2-D plot: y is mIoU when it is an objective, x the first other objective
    (params when mIoU is the only one)."""
    others = [o for o in spec.objectives if o != MIOU]
    if MIOU in spec.objectives:
        return (others[0] if others else "params"), MIOU
    return others[0], (others[1] if len(others) > 1 else "params")


def front(study: optuna.Study, spec: SearchSpec) -> dict[str, Any]:
    """The non-dominated set, reference point, hypervolume and its growth over trials."""
    cands = candidates(study)
    points = np.array([list(t.values) for t in cands], dtype=np.float64).reshape(
        len(cands), len(spec.objectives))
    mask = pareto.non_dominated(points, spec.maximize) if len(cands) else np.zeros(0, bool)
    ref = reference_point(spec, points)
    hv = pareto.hypervolume(points, spec.maximize, ref)
    history = pareto.hypervolume_history(points, spec.maximize, ref)
    members = []
    for t, on in zip(cands, mask):
        if on:
            members.append({"number": t.number, "arch_id": t.user_attrs["arch_id"],
                            "arch": t.user_attrs["arch"],
                            "values": dict(zip(spec.objectives, t.values)),
                            "scores": scores_of(t), "trial_dir": t.user_attrs.get("trial_dir")})
    return {"study": spec.study_name, "objectives": list(spec.objectives),
            "directions": spec.directions, "constraints": spec.constraints,
            "reference_point": dict(zip(spec.objectives, ref)), "hypervolume": hv,
            "hypervolume_history": [{"trial": t.number, "hypervolume": h}
                                    for t, h in zip(cands, history)],
            "n_candidates": len(cands), "pareto": members,
            "_trials": cands, "_mask": mask}


def write_front(study: optuna.Study, spec: SearchSpec, workdir: Path) -> dict[str, Any]:
    """pareto.json, pareto.png and pareto.html; returns the front (with private keys)."""
    f = front(study, spec)
    public = {k: v for k, v in f.items() if not k.startswith("_")}
    public["reference_point_rule"] = ("val/miou: 0; minimised objective: its constraint budget, "
                                      "else 1.1 x the worst feasible complete value; "
                                      "search.reference_point overrides")
    atomic_write(workdir / "pareto.json", json.dumps(public, indent=2, sort_keys=True) + "\n")
    cands, mask = f["_trials"], f["_mask"]
    x_name, y_name = plot_axes(spec)
    rows = [scores_of(t) for t in cands]
    x = np.array([r.get(x_name, math.nan) for r in rows], dtype=np.float64)
    y = np.array([r.get(y_name, math.nan) for r in rows], dtype=np.float64)
    labels = [f"#{t.number}" for t in cands]
    hover = [f"trial {t.number} ({t.user_attrs['arch_id']})<br>{describe(t.user_attrs['arch'])}"
             f"<br>{x_name} {_num(r.get(x_name))}, {y_name} {_num(r.get(y_name))}"
             for t, r in zip(cands, rows)]
    title = f"{spec.study_name}: {len(cands)} candidates, hypervolume {f['hypervolume']:.4g}"
    # The plotted front is the full-dimensional one (several objectives may hide behind x).
    pareto.plot_png(workdir / "pareto.png", x, y, mask, x_label=_label(x_name),
                    y_label=_label(y_name), x_max=x_name == MIOU, y_max=y_name == MIOU,
                    title=title, labels=labels)
    pareto.plot_html(workdir / "pareto.html", x, y, mask, x_label=_label(x_name),
                     y_label=_label(y_name), x_max=x_name == MIOU, y_max=y_name == MIOU,
                     title=title, hover=hover)
    return f


def _label(name: str) -> str:
    if name.startswith(LATENCY_PREFIX):
        return f"predicted latency on {name[len(LATENCY_PREFIX):]} (ms)"
    return {MIOU: "validation mIoU", "bytes": "model bytes (fp32)"}.get(name, name)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}"
    return f"{int(v) / 1e6:.2f}M" if abs(v) >= 1e5 else f"{v:g}"


def describe(arch: dict[str, Any] | None) -> str:
    if not arch:
        return "?"
    conv = "dw" if arch["conv_type"] == "depthwise" else f"g{arch['group_size']}"
    return (f"{arch['encoder']}+{arch['decoder']} {conv} w{arch['width']:g} "
            f"{'x'.join(map(str, arch['resolution']))}")


def trial_line(t: FrozenTrial, spec: SearchSpec) -> str:
    """One line per finished trial, for the live display."""
    r = trial_record(t)
    outcome = r["outcome"] + (f" (as #{r['reused_from']})" if r["reused_from"] is not None
                              else "")
    scores = scores_of(t)
    shown = [f"{k} {_num(scores.get(k))}" for k in dict.fromkeys((MIOU, *spec.objectives))
             if k in scores]
    took = f" {r['duration_s']:.0f}s" if r["duration_s"] is not None else ""
    reason = f"  [{r['reason']}]" if r["reason"] and r["outcome"] != "complete" else ""
    return (f"trial {t.number:3d} {outcome:<10s} {describe(r['arch']):<52s} "
            f"{'  '.join(shown)}{took}{reason}")


def record_scores(r: dict[str, Any]) -> dict[str, float]:
    out = dict(r["costs"])
    out.update({LATENCY_PREFIX + k: v for k, v in r["latency_ms"].items()})
    if r["metrics"].get(MIOU) is not None:
        out[MIOU] = r["metrics"][MIOU]
    return out


def summary_table(study: optuna.Study, spec: SearchSpec,
                  front_numbers: set[int] = frozenset()) -> str:
    """One row per trial (trials of stopped workers, retried later, are left to trials.jsonl);
    an ablation groups rows by the dimension varied, the baseline repeated in each group."""
    cols = list(dict.fromkeys((MIOU, *spec.objectives, "params")))
    head = ["#", "outcome", "arch", *cols, "front", "note"]
    recs = [r for r in records(study) if r["outcome"] != "retried"]

    def row(r: dict[str, Any], mark: str = "") -> list[str]:
        sc = record_scores(r)
        note = f"as #{r['reused_from']}" if r["reused_from"] is not None else r["reason"]
        return [str(r["number"]), r["outcome"], describe(r["arch"]) + mark,
                *[_num(sc.get(c)) for c in cols], "*" if r["number"] in front_numbers else "",
                note[:70]]

    body: list[list[str] | str] = []
    if spec.strategy == "ablation":
        by_id = {r["arch_id"]: r for r in reversed(recs)}
        for dim in spec.space.searched():
            body.append(f"-- {dim}")
            for value in spec.space.values(dim):
                arch_id = spec.baseline.replace(**{dim: value}).id
                if arch_id in by_id:
                    body.append(row(by_id[arch_id], " *" if arch_id == spec.baseline.id else ""))
    else:
        body = [row(r) for r in recs]
    table = [head, *[r for r in body if isinstance(r, list)]]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = [r if isinstance(r, str) else "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [head, *body]]
    return "\n".join(lines)


# -- winners and W&B --------------------------------------------------------------------------
def pick_winners(f: dict[str, Any], spec: SearchSpec) -> list[FrozenTrial]:
    """Up to `winners.max_count` Pareto members, spread evenly along the plot's x axis (so the
    cheapest, the most accurate and trade-offs between are all exported)."""
    members = [t for t, on in zip(f["_trials"], f["_mask"]) if on]
    k = spec.winners_max
    if k <= 0 or not members:
        return []
    x_name, _ = plot_axes(spec)
    members.sort(key=lambda t: scores_of(t).get(x_name, math.inf))
    if len(members) <= k:
        return members
    picks = sorted({round(i * (len(members) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [
        len(members) - 1]
    return [members[i] for i in picks]


def export_winners(f: dict[str, Any], spec: SearchSpec, workdir: Path) -> list[dict[str, Any]]:
    """`winners/<arch id>.tflite` + report JSON for each picked Pareto member (kept if already
    exported); a member that cannot be exported is listed with its error, the rest go on."""
    from nas.errors import UserError
    picks = pick_winners(f, spec)
    if not picks:
        return []
    out_dir = workdir / "winners"
    out_dir.mkdir(exist_ok=True)
    done = []
    for t in picks:
        arch_id = t.user_attrs["arch_id"]
        out = out_dir / f"{arch_id}.tflite"
        entry: dict[str, Any] = {"number": t.number, "arch_id": arch_id, "tflite": str(out),
                                 "values": dict(zip(spec.objectives, t.values))}
        if out.exists() and out.with_suffix(".json").exists():
            report = json.loads(out.with_suffix(".json").read_text())
        else:
            try:
                from nas.export.policy import export_candidate, load_run
                arch, variables, data_cfg = load_run(workdir / t.user_attrs["trial_dir"])
                report = export_candidate(arch, variables, out, quantize=spec.winners_quantize,
                                          output=spec.winners_output, data_cfg=data_cfg)
            except (UserError, ValueError, OSError, KeyError) as e:
                entry["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
                done.append(entry)
                continue
        entry.update(report=str(out.with_suffix(".json")), parity=report.get("parity"),
                     latency_ms=report.get("latency_ms"), bytes=report.get("bytes"))
        done.append(entry)
    atomic_write(out_dir / "winners.json", json.dumps(done, indent=2, sort_keys=True) + "\n")
    return done


def log_wandb_summary(study: optuna.Study, spec: SearchSpec, f: dict[str, Any],
                      workdir: Path, wandb_cfg: Any) -> str | None:
    """One W&B run for the whole sweep: a table of all trials, the mIoU-vs-cost scatter with the
    Pareto front marked, and the hypervolume over trials. Offline unless the config says
    `wandb.mode=online`; returns the local run folder (for `wandb sync`)."""
    mode = str(getattr(wandb_cfg, "mode", "offline") or "offline") if wandb_cfg else "offline"
    if mode == "disabled":
        return None
    import wandb
    x_name, y_name = plot_axes(spec)
    on_front = {t.number for t, on in zip(f["_trials"], f["_mask"]) if on}
    cols = ["trial", "state", "outcome", "arch_id", "arch", "feasible", "pareto", MIOU, x_name,
            *[o for o in spec.objectives if o not in (MIOU, x_name)], "params", "reason"]
    cols = list(dict.fromkeys(cols))
    rows = []
    for r in records(study):
        s = {**r["costs"], **{LATENCY_PREFIX + k: v for k, v in r["latency_ms"].items()},
             MIOU: r["metrics"].get(MIOU)}
        rows.append([r["number"], r["state"], r["outcome"], r["arch_id"], describe(r["arch"]),
                     r["feasible"], r["number"] in on_front,
                     *[s.get(c) for c in cols[7:-1]], r["reason"]])
    run = wandb.init(project=getattr(wandb_cfg, "project", None) or "segnas",
                     entity=getattr(wandb_cfg, "entity", None) or None, group=spec.study_name,
                     name=f"{spec.study_name}-summary", job_type="search-summary",
                     dir=str(workdir), mode=mode, reinit="create_new",
                     settings=wandb.Settings(console="off", silent=True),
                     config={"search": spec.fingerprint(), "constraints": spec.constraints,
                             "reference_point": f["reference_point"]})
    try:
        run.define_metric("trial")
        run.define_metric("hypervolume", step_metric="trial")
        for h in f["hypervolume_history"]:
            run.log({"trial": h["trial"], "hypervolume": h["hypervolume"]})
        table = wandb.Table(columns=cols, data=rows)
        front_rows = [[r[cols.index(x_name)], r[cols.index(y_name)], r[0]] for r in rows
                      if r[6]]
        front_table = wandb.Table(columns=[x_name, y_name, "trial"], data=front_rows)
        hv_table = wandb.Table(columns=["trial", "hypervolume"],
                               data=[[h["trial"], h["hypervolume"]]
                                     for h in f["hypervolume_history"]])
        run.log({"trials": table,
                 "scatter": wandb.plot.scatter(table, x_name, y_name,
                                               title=f"{y_name} vs {x_name}, all trials"),
                 "pareto_front": wandb.plot.scatter(front_table, x_name, y_name,
                                                    title="Pareto front"),
                 "hypervolume_over_trials": wandb.plot.line(
                     hv_table, "trial", "hypervolume", title="hypervolume over trials"),
                 "pareto_plot": wandb.Image(str(workdir / "pareto.png"))})
        run.summary["hypervolume"] = f["hypervolume"]
        run.summary["n_candidates"] = f["n_candidates"]
        run_dir = str(Path(run.dir).parent)
    finally:
        run.finish()
    return run_dir


def render(study: optuna.Study, spec: SearchSpec, workdir: Path, *, winners: bool = True,
           wandb_cfg: Any = None, log: Any = print) -> dict[str, Any]:
    """Every output of the workdir from the study; prints the summary table and hypervolume."""
    write_trials_jsonl(study, workdir)
    f = write_front(study, spec, workdir)
    numbers = {m["number"] for m in f["pareto"]}
    log(summary_table(study, spec, numbers))
    ref = ", ".join(f"{k} {_num(v)}" for k, v in f["reference_point"].items())
    log(f"\nPareto front: {len(numbers)} of {f['n_candidates']} feasible complete candidates; "
        f"hypervolume {f['hypervolume']:.6g} (reference point: {ref})")
    log(f"wrote {workdir / 'trials.jsonl'}, {workdir / 'pareto.json'}, "
        f"{workdir / 'pareto.png'}, {workdir / 'pareto.html'}")
    result = {"front": f, "winners": [], "wandb_dir": None}
    if winners:
        result["winners"] = export_winners(f, spec, workdir)
        for w in result["winners"]:
            if "error" in w:
                log(f"winner #{w['number']} ({w['arch_id']}): not exported: {w['error']}")
            else:
                p = w.get("parity") or {}
                log(f"winner #{w['number']}: {w['tflite']} ({_num(w.get('bytes'))} bytes, "
                    f"LiteRT {w.get('latency_ms') or 0:.2f} ms, parity max_abs_diff "
                    f"{p.get('max_abs_diff')}, argmax agreement {p.get('argmax_agreement')})")
    if wandb_cfg is not None:
        result["wandb_dir"] = log_wandb_summary(study, spec, f, workdir, wandb_cfg)
    return result
