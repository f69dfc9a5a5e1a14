"""The study, its sampler, the candidates a strategy lists, and the early-stopping rule.

Strategies and samplers: `grid` uses Optuna's GridSampler (its `after_trial` silenced, see
below); `nsga2` / `tpe` Optuna's NSGAIISampler / TPESampler, multi-objective, constraints
given per trial with `trial.set_constraint` (Optuna 5 deprecated `constraints_func`);
`random` and `ablation` enqueue their whole candidate list (`study.enqueue_trial`), so every
worker and machine derives the same list and no candidate repeats.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UserError
from nas.search import storage as st
from nas.search import workers as wk
from nas.search.spec import (
    MIOU,
    SearchSpec,
    ablation_archs,
    arch_from_params,
    planned_trials,
)
from nas.space.arch import Arch
from nas.space.encoding import distributions, params_of


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose `after_trial` does not call `study.stop()`, which raises outside
    `study.optimize`; the driver stops by counting the grid's points itself."""

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any
    ) -> None:
        return None


def make_sampler(spec: SearchSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The strategy's Optuna sampler. Constraints reach NSGA-II / TPE through
    `trial.set_constraint` (Optuna 5 deprecated the samplers' `constraints_func`)."""
    if spec.strategy == "grid":
        space = {
            d: [dist.choices[i] for i in range(len(dist.choices))]
            for d, dist in distributions(spec.space).items()
        }
        return _AskTellGridSampler(space, seed=seed)
    if spec.strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=spec.population_size, seed=seed)
    if spec.strategy == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=spec.startup_trials, seed=seed)
    # random and ablation: every trial is enqueued (listed_archs), the sampler never draws.
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(spec: SearchSpec, storage: optuna.storages.BaseStorage, seed: int) -> optuna.Study:
    """Creates or loads the study; refuses one created with another space or objectives."""
    study = optuna.create_study(
        study_name=spec.study_name,
        storage=storage,
        directions=spec.directions,
        sampler=make_sampler(spec, seed),
        load_if_exists=True,
    )
    fingerprint = spec.fingerprint()
    stored = study.user_attrs.get("segnas")
    if stored is None:
        study.set_user_attr("segnas", fingerprint)
    elif "schema" not in stored:
        raise UserError(
            f"search: study {spec.study_name!r} in this storage was created by an older segnas "
            "(arch schema 1: flat archs, before family configs), whose arch ids and parameter "
            "names this version does not share; allowed: a new workdir or search.study_name "
            "(its trials.jsonl and pareto.json stay readable as files)"
        )
    elif stored != fingerprint:
        diff = [k for k in fingerprint if stored.get(k) != fingerprint[k]]
        raise UserError(
            f"search: study {spec.study_name!r} in this storage was created with "
            f"another {', '.join(diff)}; allowed: the same search config, or a new "
            "search.study_name / workdir"
        )
    enqueue_missing(study, spec)
    return study


def listed_archs(spec: SearchSpec) -> list[Arch] | None:
    """The candidates of list-like strategies, in order; None for samplers that adapt.

    random: `planned_trials` distinct architectures drawn with `search.seed` (sampling without
    replacement, so no trial repeats an architecture, and every worker or machine derives the
    same list); ablation: the baseline and its one-dimension neighbours.
    """
    n = planned_trials(spec)
    if spec.strategy == "ablation":
        return ablation_archs(spec)[:n]
    if spec.strategy != "random":
        return None
    rng = random.Random(spec.seed)
    if 2 * n > spec.space.size():
        return [
            arch_from_params(params_of(a, spec.space), spec)
            for a in rng.sample(list(spec.space.grid()), n)
        ]
    archs: dict[str, Arch] = {}
    while len(archs) < n:
        a = arch_from_params(params_of(Arch.sample(spec.space, rng), spec.space), spec)
        archs.setdefault(a.id, a)
    return list(archs.values())


def enqueue_missing(study: optuna.Study, spec: SearchSpec) -> int:
    """Enqueues listed candidates the study does not hold yet (idempotent: a re-run or a grown
    num_trials adds only what is missing); returns how many were added."""
    archs = listed_archs(spec)
    if archs is None:
        return 0
    present = {
        t.user_attrs.get("arch_id") for t in st.counted_trials(study.get_trials(deepcopy=False))
    }
    added = 0
    for arch in archs:
        if arch.id not in present:
            study.enqueue_trial(
                params_of(arch, spec.space), user_attrs={"arch_id": arch.id, "arch": arch.to_dict()}
            )
            added += 1
    return added


def sampler_seed(spec: SearchSpec, worker_index: int, shared_storage: bool) -> int:
    """Distinct samplers per worker, so parallel workers do not propose the same sequence;
    machines sharing a storage also differ by host name. One local worker: `search.seed`."""
    seed = spec.seed + worker_index
    if shared_storage:
        seed += zlib.crc32(wk.worker_id()["host"].encode()) % 100_000
    return seed


class MedianRule:
    """`on_eval` for one trial: records its curve, asks to stop below the running median."""

    def __init__(self, study: optuna.Study, trial: optuna.Trial, spec: SearchSpec) -> None:
        self.study, self.trial, self.spec = study, trial, spec
        self.curve: dict[str, float] = {}
        self.stopped: tuple[int, float, float] | None = None

    def __call__(self, step: int, metrics: dict[str, Any]) -> bool:
        """Record val/miou at `step`; True (stop) if below the median of completed trials."""
        if MIOU not in metrics:
            return False
        miou = float(metrics[MIOU])
        self.curve[str(int(step))] = miou
        self.trial.set_user_attr("curve", self.curve)
        if not self.spec.prune or step < self.spec.prune_warmup_steps:
            return False
        others = [
            t.user_attrs["curve"][str(int(step))]
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if str(int(step)) in (t.user_attrs.get("curve") or {})
            and "reused_from" not in t.user_attrs
        ]  # one vote per architecture
        if len(others) < self.spec.prune_min_trials:
            return False
        median = float(np.median(others))
        if miou < median:
            self.stopped = (int(step), miou, median)
            return True
        return False
