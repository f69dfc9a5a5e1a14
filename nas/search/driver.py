"""The search driver: ask -> score cheaply -> train -> tell, over an Optuna study.

One worker runs `run_worker`: before each trial it fails and re-enqueues trials of dead workers
(nas.search.storage), asks the study for a trial, turns its parameters into an `Arch`, and:
- if an earlier trial already holds that architecture, reuses its outcome (complete, pruned or
  failed) without training, or skips the trial when that earlier one is still running;
- computes the cheap scores first (params / MACs / bytes from nas.cost, predicted latency per
  target from its table); a candidate breaking a constraint (latency or size budget) is not
  trained: it is recorded as infeasible (Optuna state PRUNED, user_attr `feasible` False);
- otherwise trains it with the evaluator in `WORKDIR/trials/<arch id>/` (so a retried
  candidate resumes from its checkpoint) under the training config's budget (train.steps,
  train.max_minutes), optionally stopped early by a median rule, and tells the study.
Any candidate failure (status diverged / failed, an exception, out of memory) becomes a FAILed
trial with its reason; the sweep goes on. Ctrl-C or a sweep-wide config error (`UserError`
from the evaluator) hands the trial back (FAIL + retry enqueued) and stops the worker.

The evaluator is a plain function with the trainer's signature,
`evaluate(config, workdir, *, arch, on_eval) -> result` (`nas.train.train_and_evaluate` by
default) where `result` has `status`, `step`, `metrics` (with "val/miou"), `wall_time_s` and
`message`; tests pass a fake one, users may name their own in `search.evaluator`.

Pruning: multi-objective Optuna studies do not support `trial.report`, so each trial keeps its
validation curve in the user_attr `curve` ({step: mIoU}); at an evaluation step the candidate
is stopped when its mIoU is below the median mIoU, at that same step, of the completed trials
(needs `prune.min_trials` of them, from `prune.warmup_steps` on).
"""

from __future__ import annotations

import math
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from ml_collections import ConfigDict
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UserError
from nas.search import storage as st
from nas.search import workers as wk
from nas.search.prepare import Context
from nas.search.spec import (
    LATENCY_PREFIX,
    MIOU,
    SearchSpec,
    arch_from_params,
    planned_trials,
)
from nas.search.strategies import MedianRule
from nas.space.arch import Arch
from nas.space.encoding import distributions

OnTrial = Callable[[FrozenTrial], None]


def cheap_scores(
    arch: Arch, spec: SearchSpec, tables: dict[str, Any], cost_fn: Callable[[Arch], dict]
) -> dict[str, Any]:
    """Costs, predicted latencies and constraint violations: everything known before training."""
    c = cost_fn(arch)
    costs = {"params": int(c["params"]), "macs": int(c["macs"]), "bytes": int(c["bytes_fp32"])}
    latency = {}
    if tables:
        from nas.latency import predict  # imported only when a sweep uses latency

        latency = {t: float(predict(arch, table)) for t, table in tables.items()}
    values = {**costs, **{LATENCY_PREFIX + t: ms for t, ms in latency.items()}}
    violations = {name: values[name] - bound for name, bound in spec.constraints.items()}
    return {
        "costs": costs,
        "latency_ms": latency,
        "violations": [violations[n] for n in spec.constraints],
        "broken": [
            f"{n} {_fmt(values[n])} > {_fmt(spec.constraints[n])}"
            for n, v in violations.items()
            if v > 0
        ],
    }


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"


def objective_values(
    spec: SearchSpec, scores: dict[str, Any], metrics: dict[str, float]
) -> list[float]:
    """The trial's values in `spec.objectives` order: val/miou, latency (ms) or a cost."""
    out = []
    for o in spec.objectives:
        if o == MIOU:
            out.append(float(metrics[MIOU]))
        elif o.startswith(LATENCY_PREFIX):
            out.append(scores["latency_ms"][o[len(LATENCY_PREFIX) :]])
        else:
            out.append(float(scores["costs"][o]))
    return out


def candidate_config(ctx: Context, arch: Arch, trial_dir: Path) -> ConfigDict:
    """The training config of one candidate: the sweep's, with this arch and its W&B names."""
    cfg = ctx.config.copy_and_resolve_references()
    with cfg.unlocked():
        if "search" in cfg:
            del cfg["search"]
        if "arch" in cfg:
            del cfg["arch"]
        cfg.arch = arch.to_dict()
        if "wandb" in cfg:
            # One W&B run per candidate, grouped by study (see nas.train's writer).
            cfg.wandb.group = ctx.spec.study_name
            cfg.wandb.name = f"{ctx.spec.study_name}-{arch.id}"
    return cfg


def _scalars(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Numeric metrics as plain floats (non-finite -> None, so trials.jsonl stays JSON)."""
    out: dict[str, float | None] = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out[k] = f if math.isfinite(f) else None
    return out


def _tell(
    ctx: Context,
    trial: optuna.Trial,
    outcome: str,
    reason: str = "",
    values: list[float] | None = None,
) -> FrozenTrial:
    trial.set_user_attr("outcome", outcome)
    trial.set_user_attr("reason", reason)
    state = {
        "complete": TrialState.COMPLETE,
        "infeasible": TrialState.PRUNED,
        "pruned": TrialState.PRUNED,
    }.get(outcome, TrialState.FAIL)
    ctx.study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)
    return ctx.study._storage.get_trial(trial._trial_id)


def _hand_back(ctx: Context, trial: optuna.Trial) -> None:
    """Interrupted: fail the trial and enqueue its retry, as if this worker had died."""
    storage = ctx.study._storage
    try:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        st.retry_callback(ctx.study)(ctx.study, storage.get_trial(trial._trial_id))


def _reuse(ctx: Context, trial: optuna.Trial, prior: FrozenTrial) -> FrozenTrial:
    for key in (
        "costs",
        "latency_ms",
        "violations",
        "feasible",
        "metrics",
        "train",
        "curve",
        "trial_dir",
    ):
        if key in prior.user_attrs:
            trial.set_user_attr(key, prior.user_attrs[key])
    for name, value in prior.constraints.items():
        trial.set_constraint(name, value)
    trial.set_user_attr("reused_from", prior.number)
    if "outcome" in prior.user_attrs:
        outcome, reason = prior.user_attrs["outcome"], prior.user_attrs.get("reason", "")
    else:  # a trial failed by the heartbeat check, its retries used up
        outcome, reason = "failed", "its worker stopped (no heartbeat) and retries ran out"
    return _tell(ctx, trial, outcome, reason, list(prior.values) if prior.values else None)


def run_trial(ctx: Context, trial: optuna.Trial) -> FrozenTrial:
    """Evaluates one asked trial and tells the study; returns the finished trial."""
    t0 = time.time()
    trial.set_user_attr("worker", wk.worker_id())
    dists = distributions(ctx.spec.space)
    params = {d: trial.suggest_categorical(d, dists[d].choices) for d in dists}
    arch = arch_from_params(params, ctx.spec)
    trial.set_user_attr("arch_id", arch.id)
    trial.set_user_attr("arch", arch.to_dict())

    trials = ctx.study.get_trials(deepcopy=False)
    prior = st.prior_trial(trials, arch.id, trial.number)
    # A listed candidate enqueued twice (two fresh workers racing) is dropped; one a sampler
    # proposed again is answered from the earlier trial (the sampler learns from it).
    mine = next(t for t in trials if t.number == trial.number)
    enqueued_twice = prior is not None and "fixed_params" in mine.system_attrs
    if prior is not None and (
        enqueued_twice or prior.state in (TrialState.RUNNING, TrialState.WAITING)
    ):
        trial.set_user_attr("skipped", f"trial {prior.number} holds the same architecture")
        return _tell(ctx, trial, "skipped", trial.user_attrs["skipped"])
    if prior is not None:
        return _reuse(ctx, trial, prior)
    if st.slots_taken(trials, before=trial.number) >= planned_trials(ctx.spec):
        trial.set_user_attr("skipped", "the sweep's budget was reached by other workers")
        return _tell(ctx, trial, "skipped", trial.user_attrs["skipped"])
    # Two local workers proposing one architecture at the same moment both pass the check
    # above; the architecture's lock lets only one of them evaluate it.
    arch_lock = wk.FileLock(ctx.workdir / "locks" / arch.id)
    if not arch_lock.acquire():
        trial.set_user_attr("skipped", "another worker is evaluating the same architecture")
        return _tell(ctx, trial, "skipped", trial.user_attrs["skipped"])
    try:
        return _evaluate(ctx, trial, arch, t0)
    finally:
        arch_lock.release()


def _evaluate(ctx: Context, trial: optuna.Trial, arch: Arch, t0: float) -> FrozenTrial:
    """Cheap scores, then (when feasible) training; tells the study the outcome."""
    try:
        scores = cheap_scores(arch, ctx.spec, ctx.tables, ctx.cost_fn)
    except (UserError, ValueError) as e:  # e.g. a latency table without this arch's blocks
        return _tell(ctx, trial, "failed", f"scoring: {e}")
    t_cheap = time.time() - t0
    for key in ("costs", "latency_ms", "violations"):
        trial.set_user_attr(key, scores[key])
    trial.set_user_attr("feasible", not scores["broken"])
    for name, value in zip(ctx.spec.constraints, scores["violations"], strict=False):
        trial.set_constraint(name, value)  # <= 0: satisfied (Optuna's convention)
    if scores["broken"] and not ctx.spec.train_infeasible:
        trial.set_user_attr("timings", {"cheap_s": t_cheap, "total_s": time.time() - t0})
        return _tell(ctx, trial, "infeasible", "infeasible: " + "; ".join(scores["broken"]))

    trial_dir = ctx.workdir / "trials" / arch.id
    trial_dir.mkdir(parents=True, exist_ok=True)
    trial.set_user_attr("trial_dir", str(trial_dir.relative_to(ctx.workdir)))
    rule = MedianRule(ctx.study, trial, ctx.spec)
    t1 = time.time()
    try:
        with wk.Heartbeat(ctx.study, trial._trial_id):
            result = ctx.evaluate(
                candidate_config(ctx, arch, trial_dir), trial_dir, arch=arch, on_eval=rule
            )
    except (KeyboardInterrupt, SystemExit, UserError):
        _hand_back(ctx, trial)
        raise
    except Exception as e:  # a broken candidate must never end the sweep
        (trial_dir / "error.txt").write_text(traceback.format_exc())
        text = f"{type(e).__name__}: {e}".splitlines()[0][:300]
        oom = isinstance(e, MemoryError) or "RESOURCE_EXHAUSTED" in str(e)
        trial.set_user_attr(
            "timings",
            {"cheap_s": t_cheap, "train_s": time.time() - t1, "total_s": time.time() - t0},
        )
        return _tell(
            ctx,
            trial,
            "failed",
            ("out of memory: " if oom else "exception: ")
            + text
            + f" (traceback in {trial_dir / 'error.txt'})",
        )
    trial.set_user_attr(
        "timings", {"cheap_s": t_cheap, "train_s": time.time() - t1, "total_s": time.time() - t0}
    )
    metrics = _scalars(result.metrics or {})
    trial.set_user_attr("metrics", metrics)
    trial.set_user_attr(
        "train",
        {
            "status": result.status,
            "step": int(result.step),
            "wall_time_s": float(result.wall_time_s),
            "message": str(result.message or ""),
        },
    )
    if result.status != "complete":
        return _tell(
            ctx,
            trial,
            result.status if result.status == "diverged" else "failed",
            f"{result.status} at step {result.step}: {result.message}",
        )
    if rule.stopped and int(result.step) <= rule.stopped[0]:
        step, miou, median = rule.stopped
        return _tell(
            ctx,
            trial,
            "pruned",
            f"pruned at step {step}: val/miou {miou:.4f} < median {median:.4f} of completed trials",
        )
    if metrics.get(MIOU) is None:
        return _tell(
            ctx, trial, "failed", f"no finite {MIOU} in the evaluator's metrics ({sorted(metrics)})"
        )
    rule.curve[str(int(result.step))] = metrics[MIOU]  # the final evaluation, for the rule
    trial.set_user_attr("curve", rule.curve)
    return _tell(ctx, trial, "complete", "", objective_values(ctx.spec, scores, metrics))


def _run_owned(ctx: Context, trial: optuna.Trial) -> FrozenTrial | None:
    """`run_trial` under the trial's lock; None when another worker of this workdir received
    the same queued trial (SQLite's non-atomic pop) and runs it."""
    lock = wk.FileLock(ctx.workdir / "locks" / f"trial-{trial.number}")
    if not lock.acquire():
        return None
    try:
        if ctx.study._storage.get_trial(trial._trial_id).state != TrialState.RUNNING:
            return None  # its other holder already finished it
        return run_trial(ctx, trial)
    except optuna.exceptions.UpdateFinishedTrialError:
        return None  # finished by its other holder while this worker looked at it
    finally:
        lock.release()


def run_worker(ctx: Context, on_trial: OnTrial | None = None) -> int:
    """Runs trials until the sweep's budget is taken; returns how many this worker finished.

    A sampler may keep proposing architectures the study already holds (NSGA-II or TPE that
    converged on a small space); those trials are answered from the earlier ones at no cost,
    and after `patience` of them in a row the worker stops rather than spin.
    """
    done, idle = 0, 0
    target = planned_trials(ctx.spec)
    patience = max(20, target)
    while idle < patience:
        with wk.workdir_lock(ctx.workdir):  # check-then-ask, atomic among local workers
            wk.reap_dead_workers(ctx.study)
            trials = ctx.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and st.slots_taken(trials) >= target:
                break
            with warnings.catch_warnings():
                # ask/tell with heartbeats is what this driver is designed for (Heartbeat).
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = ctx.study.ask()
        finished = _run_owned(ctx, trial)
        if finished is None:  # another worker holds this very trial (see wk.FileLock)
            idle += 1
            continue
        new = not (finished.user_attrs.get("skipped") or "reused_from" in finished.user_attrs)
        idle = 0 if new else idle + 1
        if not finished.user_attrs.get("skipped"):
            done += 1
            if on_trial is not None:
                on_trial(finished)
    return done
