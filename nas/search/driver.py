"""The search driver: ask -> score cheaply -> train -> tell, over an Optuna study.

One worker runs `run_worker`: before each trial it fails and re-enqueues trials of dead workers
(nas.search.storage), asks the study for a trial, turns its parameters into an `Arch`, and
ends it with one of the outcomes of the table in the `nas.search` docstring:
- an arch an earlier trial already holds is a `duplicate`: told FAIL (so the arch enters the
  sampler's population once), not counted, not trained; after FILL_AFTER of them in a row the
  slot goes to the nearest arch the study does not hold (`_fill`); when the earlier trial is
  still running on another worker the trial is `skipped` (left out of every output);
- the cheap scores come first (params / MACs / bytes from nas.cost, predicted latency per
  target from its table); a candidate breaking a constraint (latency or size budget) is not
  trained: it is `infeasible`, told COMPLETE with placeholder values (val/miou 0, its predicted
  latency and costs; `nas.search.outcomes`) and its constraint violations, so constrained
  NSGA-II / TPE learn where the budget lies;
- otherwise it trains with the evaluator in `WORKDIR/trials/<arch id>/` (a retried candidate
  resumes from its checkpoint). Its budget is its step count (`train.steps`); compile time is
  not charged to it; `train.max_minutes` is a safety net whose stop is `timeout`. A median
  rule may prune it. `complete` needs the full step budget.
Candidate failures (timeout, diverged, failed: an exception, out of memory) are recorded with
their reason and the sweep goes on, up to `search.max_failures` of them. Ctrl-C or a
sweep-wide config error (`UserError` from the evaluator) hands the trial back (FAIL + retry
enqueued) and stops the worker. Each told trial records the hypervolume at that moment
(user_attr `hypervolume`, under the study's fixed reference point).

The evaluator is a plain function with the trainer's signature,
`evaluate(config, workdir, *, arch, on_eval) -> TrainResult` (`nas.train.train_and_evaluate`
by default; status, step, metrics with "val/miou", step_budget, compile_s, train_s, message);
tests pass a fake one, users may name their own in `search.evaluator`.

Pruning: multi-objective Optuna studies do not support `trial.report`, so each trial keeps its
validation curve in the user_attr `curve` ({step: mIoU}); at an evaluation step the candidate
is stopped when its mIoU is below the median mIoU, at that same step, of the completed trials
(needs `prune.min_trials` of them, from `prune.warmup_steps` on).
"""

from __future__ import annotations

import math
import random
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
from nas.search import front as fr
from nas.search import outcomes as oc
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
from nas.space.encoding import distributions, params_of

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
    """Tells the study `outcome` (its Optuna state from nas.search.outcomes) and records the
    hypervolume the study has with this trial (live history)."""
    trial.set_user_attr("outcome", outcome)
    trial.set_user_attr("reason", reason)
    state = oc.optuna_state(outcome)
    if ctx.reference:
        ref = [ctx.reference[o] for o in ctx.spec.objectives]
        on_front = outcome == "complete" and trial.user_attrs.get("feasible") is not False
        hv = fr.hypervolume_with(ctx.study, ctx.spec, ref, values if on_front else None)
        trial.set_user_attr("hypervolume", hv)
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


def _duplicate(ctx: Context, trial: optuna.Trial, prior: FrozenTrial) -> FrozenTrial:
    """An arch the study holds: answered from its earlier trial, told FAIL so that the sampler's
    population has the arch once, not counted toward num_trials."""
    trial.set_user_attr("reused_from", prior.number)
    outcome = prior.user_attrs.get("outcome", "killed")
    return _tell(ctx, trial, "duplicate", f"arch of trial {prior.number} ({outcome})")


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
        return _duplicate(ctx, trial, prior)
    if st.slots_taken(trials, before=trial.number) >= planned_trials(ctx.spec):
        trial.set_user_attr("skipped", "the sweep's budget was reached by other workers")
        return _tell(ctx, trial, "skipped", trial.user_attrs["skipped"])
    # Two workers (on any machines) proposing one architecture at the same moment: each wrote
    # its arch to the study before reading it, so at least one of them sees the other, and a
    # worker that sees another running holder leaves the architecture to it (both may: it is
    # proposed again later). Decided through the study's database, not a lock file: flock is
    # unreliable on network file systems, and machines need not share a workdir.
    if any(
        t.number > trial.number
        and t.state == TrialState.RUNNING
        and t.user_attrs.get("arch_id") == arch.id
        for t in st.counted_trials(trials)
    ):
        trial.set_user_attr("skipped", "another worker is evaluating the same architecture")
        return _tell(ctx, trial, "skipped", trial.user_attrs["skipped"])
    return _evaluate(ctx, trial, arch, t0)


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
        return _tell(
            ctx,
            trial,
            "infeasible",
            "; ".join(scores["broken"]),
            oc.placeholder_values(ctx.spec, scores),
        )

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
    budget = _budget(result)
    trial.set_user_attr(
        "timings",
        {
            "cheap_s": t_cheap,
            "compile_s": budget["compile_s"],
            "train_s": budget["train_s"],
            "total_s": time.time() - t0,
        },
    )
    metrics = _scalars(result.metrics or {})
    trial.set_user_attr("metrics", metrics)
    trial.set_user_attr("train", budget)
    outcome, reason = _outcome(result, budget, rule)
    if outcome == "complete" and metrics.get(MIOU) is None:
        outcome = "failed"
        reason = f"no finite {MIOU} in the evaluator's metrics ({sorted(metrics)})"
    if outcome != "complete":
        return _tell(ctx, trial, outcome, reason)
    rule.curve[str(int(result.step))] = metrics[MIOU]  # the final evaluation, for the rule
    trial.set_user_attr("curve", rule.curve)
    return _tell(ctx, trial, "complete", "", objective_values(ctx.spec, scores, metrics))


def _budget(result: Any) -> dict[str, Any]:
    """What trials.jsonl records of a run: status, step reached, step budget, compile and
    train seconds (0 where a user's evaluator does not say)."""
    return {
        "status": str(result.status),
        "step": int(result.step),
        "step_budget": int(getattr(result, "step_budget", 0) or 0),
        "compile_s": float(getattr(result, "compile_s", 0.0) or 0.0),
        "train_s": float(getattr(result, "train_s", 0.0) or 0.0),
        "wall_time_s": float(result.wall_time_s),
        "message": str(result.message or ""),
    }


def _outcome(result: Any, budget: dict[str, Any], rule: MedianRule) -> tuple[str, str]:
    """The outcome of a trained candidate and its reason ('' for complete)."""
    status, step, steps = budget["status"], budget["step"], budget["step_budget"]
    of = f" of {steps}" if steps else ""
    if status == "timeout":
        return "timeout", f"stopped by train.max_minutes at step {step}{of}: {budget['message']}"
    if status in ("diverged", "failed"):
        return status, f"{status} at step {step}{of}: {budget['message']}"
    if status != "complete":
        return "failed", f"the evaluator returned status {status!r} at step {step}{of}"
    if rule.stopped and step <= rule.stopped[0]:
        at, miou, median = rule.stopped
        return "pruned", (
            f"pruned at step {at}: val/miou {miou:.4f} < median {median:.4f} of completed trials"
        )
    if steps and step < steps:  # equal budgets: a short run is never a complete candidate
        return "failed", f"the evaluator stopped at step {step}{of} without saying why"
    return "complete", ""


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

    It also ends, setting `ctx.stop_reason` and the study's user_attr `stop_reason`, when
    `search.max_failures` candidates failed (timeout, diverged, failed), or when the sampler
    proposed `search.max_duplicates` archs in a row that the study already holds (NSGA-II or
    TPE converged on a small space).
    """
    done, idle, dup_run = 0, 0, 0
    target = planned_trials(ctx.spec)
    if ctx.study.user_attrs.get("stop_reason"):  # a reason of an earlier run of this study
        ctx.study.set_user_attr("stop_reason", "")
    while True:
        if idle >= ctx.spec.max_duplicates:
            _stop(
                ctx,
                f"the sampler proposed {idle} archs in a row that the study already holds "
                f"({_held(ctx)} of {ctx.spec.space.size()} in the space); raise "
                "search.max_duplicates, widen search.space or lower search.num_trials",
            )
            break
        with wk.workdir_lock(ctx.workdir):  # check-then-ask, atomic among local workers
            wk.reap_dead_workers(ctx.study)
            trials = ctx.study.get_trials(deepcopy=False)
            counted = st.counted_trials(trials)
            failures = oc.genuine_failures(counted)
            if failures >= ctx.spec.max_failures:
                _stop(
                    ctx,
                    f"{failures} candidates failed (timeout, diverged or failed; "
                    f"search.max_failures = {ctx.spec.max_failures}): see their reasons in "
                    "trials.jsonl; fix the space or training config, or raise max_failures",
                )
                break
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and st.slots_taken(trials) >= target:
                if not any(
                    t.state == TrialState.RUNNING and not t.user_attrs.get("worker") for t in trials
                ):
                    break
                # a slot is held by a trial no worker recorded itself on: its asker is
                # starting it, or died asking (reaped after wk.ORPHAN_SECONDS): look again
                time.sleep(1.0)
                continue
            with warnings.catch_warnings():
                # ask/tell with heartbeats is what this driver is designed for (Heartbeat).
                warnings.filterwarnings("ignore", message="Heartbeat of storage")
                trial = ctx.study.ask()
        finished = _run_owned(ctx, trial)
        if finished is None:  # another worker holds this very trial (see wk.FileLock)
            idle += 1
            continue
        a = finished.user_attrs
        idle = idle + 1 if a.get("skipped") or a.get("outcome") == "duplicate" else 0
        dup_run = dup_run + 1 if a.get("outcome") == "duplicate" else 0
        if dup_run and dup_run % FILL_AFTER == 0 and not _fill(ctx, finished):
            _stop(
                ctx,
                f"every arch of the space ({ctx.spec.space.size()}) is held by the study; "
                "nothing new to propose",
            )
            break
        if not a.get("skipped"):
            done += 1
            if on_trial is not None:
                on_trial(finished)
    return done


def _fill(ctx: Context, trial: FrozenTrial) -> bool:
    """After FILL_AFTER duplicates in a row, enqueues the nearest arch the study does not hold:
    a one-dimension neighbour of the duplicate when one is free (keeping what the sampler asked
    for in every other dimension), else any free arch; drawn at random, seeded by search.seed
    and the trial number. A converged TPE proposes its best point again and again (its
    observations do not change), so without this the slot would be lost. False when the space
    has no free arch."""
    with wk.workdir_lock(ctx.workdir):
        trials = ctx.study.get_trials(deepcopy=False)
        if any(t.state == TrialState.WAITING for t in trials):
            return True  # a queued arch takes the next slot already
        held = {t.user_attrs.get("arch_id") for t in st.counted_trials(trials)}
        rng = random.Random(ctx.spec.seed * 1_000_003 + trial.number)
        space = ctx.spec.space
        dup = Arch.from_dict(trial.user_attrs["arch"])
        near = [a for d in space.searched() for a in dup.neighbours(space, d) if a.id not in held]
        if near:
            arch = rng.choice(near)
        elif space.size() <= FILL_GRID_MAX:
            free = [a for a in _space_archs(ctx) if a.id not in held]
            if not free:
                return False
            arch = rng.choice(free)
        else:  # a large space: a few random draws find a free arch
            for _ in range(1000):
                arch = arch_from_params(params_of(Arch.sample(space, rng), space), ctx.spec)
                if arch.id not in held:
                    break
            else:
                return False
        arch = arch_from_params(params_of(arch, space), ctx.spec)
        ctx.study.enqueue_trial(
            params_of(arch, space),
            user_attrs={"arch_id": arch.id, "arch": arch.to_dict(), "fills_for": trial.number},
        )
    return True


FILL_GRID_MAX = 4096  # spaces up to this size are listed to find a free arch
# Duplicates in a row before a free arch fills the slot. NSGA-II's next child is usually new
# (its generator moves on), so asking again is free and keeps its generations its own; TPE
# whose observations did not change proposes the same point every time.
FILL_AFTER = 10


def _space_archs(ctx: Context) -> list[Arch]:
    """Every arch of the sweep's space, as the driver builds them (baseline's unsearched
    dimensions)."""
    return [arch_from_params(params_of(a, ctx.spec.space), ctx.spec) for a in ctx.spec.space.grid()]


def _held(ctx: Context) -> int:
    """Distinct archs the study holds."""
    return st.slots_taken(ctx.study.get_trials(deepcopy=False))


def _stop(ctx: Context, reason: str) -> None:
    """Ends the search early, saying why (the CLI prints the study's `stop_reason`)."""
    ctx.stop_reason = reason
    ctx.study.set_user_attr("stop_reason", reason)
