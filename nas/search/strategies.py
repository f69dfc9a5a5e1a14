"""Setting up a search worker: the study and its sampler, the listed candidates, the
workdir, the latency tables, the evaluator. `nas.search.prepare` calls these in order.

Strategies and samplers: `grid` uses Optuna's GridSampler (its `after_trial` silenced, see
below); `nsga2` / `tpe` Optuna's NSGAIISampler / TPESampler, multi-objective, constraints
given per trial with `trial.set_constraint` (Optuna 5 deprecated `constraints_func`);
`random` and `ablation` enqueue their whole candidate list (`study.enqueue_trial`), so every
worker and machine derives the same list and no candidate repeats.
"""

from __future__ import annotations

import importlib
import random
import zlib
from pathlib import Path
from typing import Any, Callable

import optuna
from ml_collections import ConfigDict
from optuna.trial import FrozenTrial, TrialState

from nas.search import storage as st
from nas.errors import UserError
from nas.search.spec import LATENCY_PREFIX, SearchSpec, ablation_archs, arch_from_params, planned_trials
from nas.space.encoding import distributions, params_of
from nas.space.arch import Arch

Evaluate = Callable[..., Any]


def load_evaluator(path: str) -> Evaluate:
    """`"package.module:function"` -> the function; UserError naming `search.evaluator`."""
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"search.evaluator: cannot import {path!r} ({e}); allowed: "
                        "'package.module:function', e.g. nas.train.loop:train_and_evaluate") from None
    return fn


# -- the study --------------------------------------------------------------------------------
class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose `after_trial` does not call `study.stop()`, which raises outside
    `study.optimize`; the driver stops by counting the grid's points itself."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Any) -> None:
        return None


def make_sampler(spec: SearchSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The strategy's Optuna sampler. Constraints reach NSGA-II / TPE through
    `trial.set_constraint` (Optuna 5 deprecated the samplers' `constraints_func`)."""
    if spec.strategy == "grid":
        space = {d: [dist.choices[i] for i in range(len(dist.choices))]
                 for d, dist in distributions(spec.space).items()}
        return _AskTellGridSampler(space, seed=seed)
    if spec.strategy == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=spec.population_size, seed=seed)
    if spec.strategy == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=spec.startup_trials, seed=seed)
    # random and ablation: every trial is enqueued (listed_archs), the sampler never draws.
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(spec: SearchSpec, storage: optuna.storages.BaseStorage,
               seed: int) -> optuna.Study:
    """Creates or loads the study; refuses one created with another space or objectives."""
    study = optuna.create_study(study_name=spec.study_name, storage=storage,
                                directions=spec.directions,
                                sampler=make_sampler(spec, seed), load_if_exists=True)
    fingerprint = spec.fingerprint()
    stored = study.user_attrs.get("segnas")
    if stored is None:
        study.set_user_attr("segnas", fingerprint)
    elif stored != fingerprint:
        diff = [k for k in fingerprint if stored.get(k) != fingerprint[k]]
        raise UserError(f"search: study {spec.study_name!r} in this storage was created with "
                        f"another {', '.join(diff)}; allowed: the same search config, or a new "
                        "search.study_name / workdir")
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
        return [arch_from_params(params_of(a, spec.space), spec)
                for a in rng.sample(list(spec.space.grid()), n)]
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
    present = {t.user_attrs.get("arch_id")
               for t in st.counted_trials(study.get_trials(deepcopy=False))}
    added = 0
    for arch in archs:
        if arch.id not in present:
            study.enqueue_trial(params_of(arch, spec.space),
                                user_attrs={"arch_id": arch.id, "arch": arch.to_dict()})
            added += 1
    return added


# -- workdir, tables, data ------------------------------------------------------------------
def check_workdir(workdir: Path) -> Path:
    """Creates the workdir and proves it writable; UserError naming it otherwise."""
    workdir = Path(workdir)
    try:
        (workdir / "trials").mkdir(parents=True, exist_ok=True)
        probe = workdir / f".probe-{st.worker_id()['pid']}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(f"workdir: cannot write {str(workdir)!r} ({e.strerror or e}); allowed: "
                        "a writable directory") from None
    return workdir.resolve()


def load_tables(spec: SearchSpec, *, build: bool) -> dict[str, Any]:
    """The latency table of each target the sweep scores; builds missing ones when allowed."""
    used = {n[len(LATENCY_PREFIX):] for n in (*spec.objectives, *spec.constraints)
            if n.startswith(LATENCY_PREFIX)}
    if not used:
        return {}
    from nas import latency
    tables = {}
    for target, path in spec.latency_tables.items():
        if target not in used:  # configured but neither an objective nor a constraint
            continue
        if not path.exists():
            if not (build and spec.build_missing_tables):
                raise UserError(f"search.latency_tables.{target}: {str(path)!r} not found; "
                                f"allowed: an existing table (build one with `segnas latency "
                                f"build --target {target} --config CONFIG --out {path}`) or "
                                "search.build_missing_tables=True")
            print(f"latency table {path} not found: measuring the blocks of this sweep's space "
                  f"on {target} (once; later runs reuse it)", flush=True)
            latency.build_table_for_space(spec.space, target=target, out=path)
        tables[target] = latency.load_table(path)
    return tables


def sampler_seed(spec: SearchSpec, worker_index: int, shared_storage: bool) -> int:
    """Distinct samplers per worker, so parallel workers do not propose the same sequence;
    machines sharing a storage also differ by host name. One local worker: `search.seed`."""
    seed = spec.seed + worker_index
    if shared_storage:
        seed += zlib.crc32(st.worker_id()["host"].encode()) % 100_000
    return seed


def check_classes(config: ConfigDict, spec: SearchSpec) -> None:
    """The space's num_classes must be the dataset's: costs and latencies are computed for
    the space's archs, the trainer builds the dataset's."""
    if "data" not in config:
        return
    from data.pipeline import dataset_info
    n = dataset_info(config.data).num_classes
    if n != spec.space.num_classes:
        raise UserError(f"search.space.num_classes: got {spec.space.num_classes}; allowed: "
                        f"{n}, the class count of data {config.data.name!r}")
