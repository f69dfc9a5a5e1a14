"""Setting up a search worker: the workdir, the sweep spec, the evaluator, the storage and
study, the latency tables; `prepare` does these in order and returns the worker's `Context`.
"""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from ml_collections import ConfigDict

from nas.errors import UserError
from nas.search import storage as st
from nas.search import workers as wk
from nas.search.front import REFERENCE_ATTR, fixed_reference
from nas.search.spec import (
    LATENCY_PREFIX,
    SearchSpec,
    spec_from_config,
)
from nas.search.strategies import open_study, sampler_seed
from nas.space.arch import Arch

Evaluate = Callable[..., Any]


def load_evaluator(path: str) -> Evaluate:
    """`"package.module:function"` -> the function; UserError naming `search.evaluator`."""
    module, _, name = path.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(
            f"search.evaluator: cannot import {path!r} ({e}); allowed: "
            "'package.module:function', e.g. nas.train.loop:train_and_evaluate"
        ) from None
    return fn


def check_workdir(workdir: Path) -> Path:
    """Creates the workdir and proves it writable; UserError naming it otherwise."""
    workdir = Path(workdir)
    try:
        (workdir / "trials").mkdir(parents=True, exist_ok=True)
        probe = workdir / f".probe-{wk.worker_id()['pid']}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise UserError(
            f"workdir: cannot write {str(workdir)!r} ({e.strerror or e}); allowed: "
            "a writable directory"
        ) from None
    return workdir.resolve()


def load_tables(spec: SearchSpec, *, build: bool) -> dict[str, Any]:
    """The latency table of each target the sweep scores; builds missing ones when allowed."""
    used = {
        n[len(LATENCY_PREFIX) :]
        for n in (*spec.objectives, *spec.constraints)
        if n.startswith(LATENCY_PREFIX)
    }
    if not used:
        return {}
    from nas import latency

    tables = {}
    for target, path in spec.latency_tables.items():
        if target not in used:  # configured but neither an objective nor a constraint
            continue
        if not path.exists():
            if not (build and spec.build_missing_tables):
                raise UserError(
                    f"search.latency_tables.{target}: {str(path)!r} not found; "
                    f"allowed: an existing table (build one with `segnas latency "
                    f"build --target {target} --config CONFIG --out {path}`) or "
                    "search.build_missing_tables=True"
                )
            print(
                f"latency table {path} not found: measuring the blocks of this sweep's space "
                f"on {target} (once; later runs reuse it)",
                flush=True,
            )
            latency.build_table_for_space(spec.space, target=target, out=path)
        table = latency.load_table(path)
        if not table.complete:
            # A build killed part-way: its measured chunks are kept and the rest measured now,
            # so a kill during the table build costs at most one chunk.
            if not (build and spec.build_missing_tables):
                raise UserError(
                    f"search.latency_tables.{target}: {str(path)!r} is incomplete (its build "
                    f"was interrupted); allowed: a complete table (finish it with `segnas "
                    f"latency build --target {target} --config CONFIG --out {path}`) or "
                    "search.build_missing_tables=True"
                )
            print(
                f"latency table {path} is incomplete (its build was interrupted): resuming it "
                f"({len(table.entries)} block signature(s) kept)",
                flush=True,
            )
            table = latency.build_table_for_space(spec.space, target=target, out=path)
        tables[target] = table
    return tables


def check_data(config: ConfigDict, spec: SearchSpec) -> None:
    """The space must fit the data: its num_classes is the dataset's (costs and latencies are
    computed for the space's archs, the trainer builds the dataset's), and no resolution it
    searches is larger than the data's images (a larger one would train on upsampled images:
    cost without information)."""
    if "data" not in config:
        return
    from data.pipeline import dataset_info

    info = dataset_info(config.data)
    if info.num_classes != spec.space.num_classes:
        raise UserError(
            f"search.space.num_classes: got {spec.space.num_classes}; allowed: "
            f"{info.num_classes}, the class count of data {config.data.name!r}"
        )
    if info.image_size is None:  # sizes vary: nothing to check up front
        return
    h, w = info.image_size
    big = [r for r in spec.space.values("resolution") if r[0] > h or r[1] > w]
    if big:
        raise UserError(
            f"search.space.resolution: got {'x'.join(map(str, big[0]))}, larger than the "
            f"{h}x{w} images of data {config.data.name!r}; allowed: resolutions up to {h}x{w}, "
            "or data at least as large as the largest resolution searched (e.g. "
            "data.builder_kwargs.height / width for toy_scenes)"
        )


@dataclasses.dataclass
class Context:
    """What every trial of a worker shares."""

    config: ConfigDict
    spec: SearchSpec
    study: optuna.Study
    workdir: Path
    evaluate: Evaluate
    tables: dict[str, Any]
    cost_fn: Callable[[Arch], dict]
    reference: dict[str, float] = dataclasses.field(default_factory=dict)  # hypervolume's
    stop_reason: str = ""  # set when the search ended before its budget (driver.run_worker)


def prepare(
    config: ConfigDict,
    workdir: Path,
    *,
    storage: str | None = None,
    worker_index: int = 0,
    evaluate: Evaluate | None = None,
    cost_fn: Callable[[Arch], dict] | None = None,
    build_tables: bool = True,
) -> Context:
    """Checks everything a worker needs (config, workdir, storage, tables) and opens the study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the driver prints its own lines
    workdir = check_workdir(workdir)
    spec = spec_from_config(config, workdir)
    if evaluate is None:
        evaluate = load_evaluator(spec.evaluator)
    if cost_fn is None:
        from nas.cost import cost as cost_fn
    check_data(config, spec)
    url = st.resolve_url(storage, workdir)
    seed = sampler_seed(spec, worker_index, not st.is_default_storage(url, workdir))
    # One local worker at a time creates the database and study and fills the queue.
    with wk.workdir_lock(workdir), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        store = st.open_storage(
            url,
            heartbeat_interval=spec.heartbeat_interval,
            grace_period=spec.grace_period,
            max_retry=spec.max_retry,
        )
        study = open_study(spec, store, seed)
    tables = load_tables(spec, build=build_tables)
    with wk.workdir_lock(workdir):
        reference = ensure_reference(study, spec, tables, cost_fn)
    return Context(
        config=config,
        spec=spec,
        study=study,
        workdir=workdir,
        evaluate=evaluate,
        tables=tables,
        cost_fn=cost_fn,
        reference=reference,
    )


def objective_scores(
    arch: Arch, names: Sequence[str], tables: dict[str, Any], cost_fn: Callable[[Arch], dict]
) -> dict[str, float]:
    """An arch's predicted latencies and costs under the objective names `names` (only what is
    asked: a cost function may take seconds)."""
    out: dict[str, float] = {}
    costs = None
    for name in names:
        if name.startswith(LATENCY_PREFIX):
            from nas.latency import predict

            out[name] = float(predict(arch, tables[name[len(LATENCY_PREFIX) :]]))
        else:
            costs = costs or cost_fn(arch)
            out[name] = float(costs["bytes_fp32" if name == "bytes" else name])
    return out


def ensure_reference(
    study: optuna.Study, spec: SearchSpec, tables: dict[str, Any], cost_fn: Callable[[Arch], dict]
) -> dict[str, float]:
    """The study's hypervolume reference point (nas.search.front.fixed_reference), computed and
    stored in the study by its first worker, read back by the others and by later runs."""
    stored = study.user_attrs.get(REFERENCE_ATTR)
    ref = fixed_reference(
        spec, lambda arch, names: objective_scores(arch, names, tables, cost_fn), stored
    )
    if ref != stored:
        study.set_user_attr(REFERENCE_ATTR, ref)
    return ref
