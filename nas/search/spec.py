"""The `search` section of an experiment config, checked once, and the space as Optuna sees it.

`spec_from_config(config, workdir)` turns `config.search` into a `SearchSpec` or raises a
`UserError` naming the field, the value and what is allowed, before anything is trained.
The space maps onto one categorical Optuna distribution per *searched* dimension (dimensions
with a single value are not parameters); values are encoded as Optuna-storable scalars
(`resolution` (64, 96) -> "64x96") and decoded back into an `Arch`.

Fields of `config.search` (experiments/quickstart.py is the commented example):
  study_name, strategy, space (a dict of dimension -> values, or a name in
  nas.space.presets.SPACES), baseline (ablation centre: a preset name or an arch dict),
  num_trials, seed, objectives,
  latency_tables (target -> table path), build_missing_tables, max_latency_ms (target -> ms),
  max_params, max_bytes, train_infeasible, population_size, startup_trials, prune (enabled,
  min_trials, warmup_steps), heartbeat_interval, grace_period, max_retry, max_failures (the
  search ends after this many timeout / diverged / failed candidates), max_duplicates (it
  ends after this many proposals in a row of archs the study already holds), evaluator, winners
  (max_count, quantize, output), reference_point (objective -> value; the hypervolume's,
  fixed up front: nas.search.front).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ml_collections import ConfigDict

from nas.errors import UserError, check_int, check_number
from nas.space.arch import SCHEMA, Arch
from nas.space.encoding import decode, encode
from nas.space.presets import PRESETS
from nas.space.resolve import resolve_space_spec
from nas.space.space import Space

STRATEGIES = ("random", "grid", "ablation", "nsga2", "tpe")
COST_OBJECTIVES = ("params", "bytes", "macs")  # minimised; from nas.cost (bytes: fp32 weights)
MIOU = "val/miou"  # maximised; the trainer's validation metric key
LATENCY_PREFIX = "latency/"  # "latency/<target>": predicted ms from that target's table, minimised
# Latency targets the latency package measures (nas/latency); a table names its own target.
LATENCY_TARGETS = ("litert-cpu", "jax-cpu", "jax-gpu")


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """A validated `config.search`: everything the driver needs, in plain types."""

    study_name: str
    strategy: str
    space: Space
    baseline: Arch  # ablation centre; for other strategies the arch of unsearched dimensions
    num_trials: int
    seed: int
    objectives: tuple[str, ...]
    latency_tables: dict[str, Path]  # target -> table path
    build_missing_tables: bool
    constraints: dict[str, float]  # objective-like name -> upper bound
    train_infeasible: bool
    population_size: int
    startup_trials: int
    prune: bool
    prune_min_trials: int
    prune_warmup_steps: int
    heartbeat_interval: int
    grace_period: int
    max_retry: int
    max_failures: int
    max_duplicates: int
    evaluator: str
    winners_max: int
    winners_quantize: str
    winners_output: str
    reference_point: dict[str, float]

    @property
    def directions(self) -> list[str]:
        """Optuna's direction per objective: maximize val/miou, minimize the others."""
        return ["maximize" if o == MIOU else "minimize" for o in self.objectives]

    @property
    def maximize(self) -> list[bool]:
        """Per objective, whether it is maximised (only val/miou is)."""
        return [o == MIOU for o in self.objectives]

    def fingerprint(self) -> dict[str, Any]:
        """What a continued study must agree on (num_trials may grow, budgets may change)."""
        return {
            "schema": SCHEMA,
            "strategy": self.strategy,
            "space": self.space.to_dict(),
            "objectives": list(self.objectives),
            "baseline": self.baseline.to_dict(),
        }


def _get(cfg: ConfigDict, name: str, default: Any) -> Any:
    return cfg.get(name, default) if cfg is not None else default


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, ConfigDict) else value


def _space(value: Any) -> Space:
    return resolve_space_spec(_plain(value), "search.space")


def _baseline(value: Any, space: Space) -> Arch:
    value = _plain(value)
    if value in ("", None):
        return space.arch()
    try:
        if isinstance(value, str):
            if value not in PRESETS:
                raise UserError(
                    f"search.baseline: got {value!r}; allowed: one of "
                    f"{', '.join(PRESETS)} or an arch dict"
                )
            arch = PRESETS[value]
        else:
            arch = Arch.from_dict(dict(value))
        # The data fixes the class count; the space carries it.
        arch = arch.replace(num_classes=space.num_classes)
    except ValueError as e:
        raise UserError(f"search.baseline: {e}") from None
    applies = arch.flatten()
    for dim in space.searched():
        if dim in applies and applies[dim] not in space.values(dim):
            raise UserError(
                f"search.baseline: {dim} {encode(dim, applies[dim])!r} is not "
                f"among search.space.{dim} values "
                f"{[encode(dim, v) for v in space.values(dim)]}; allowed: a baseline "
                "inside the space"
            )
    return arch


def _objectives(value: Any, tables: dict[str, Path]) -> tuple[str, ...]:
    objectives = tuple(_plain(value) or ())
    if not objectives:
        raise UserError(
            "search.objectives: empty; allowed: one or more of val/miou, "
            "latency/<target>, params, bytes, macs"
        )
    for o in objectives:
        _check_metric_name("search.objectives", o, tables)
    if len(set(objectives)) != len(objectives):
        raise UserError(f"search.objectives: got {list(objectives)}; allowed: each at most once")
    return objectives


def _check_metric_name(
    field: str, name: Any, tables: dict[str, Path], allow_miou: bool = True
) -> None:
    allowed = ("val/miou, " if allow_miou else "") + "latency/<target>, params, bytes, macs"
    if not isinstance(name, str):
        raise UserError(f"{field}: got {name!r}; allowed: {allowed}")
    if name.startswith(LATENCY_PREFIX):
        target = name[len(LATENCY_PREFIX) :]
        if target not in LATENCY_TARGETS:
            raise UserError(
                f"{field}: unknown latency target {target!r}; allowed: {', '.join(LATENCY_TARGETS)}"
            )
        if target not in tables:
            raise UserError(
                f"{field}: {name} needs a latency table: set "
                f"search.latency_tables.{target} to a table path (configured "
                f"targets: {', '.join(tables) or 'none'})"
            )
        return
    if name in COST_OBJECTIVES or (allow_miou and name == MIOU):
        return
    raise UserError(f"{field}: got {name!r}; allowed: {allowed}")


def _tables(value: Any, workdir: Path) -> dict[str, Path]:
    tables = {}
    for target, path in (_plain(value) or {}).items():
        if target not in LATENCY_TARGETS:
            raise UserError(
                f"search.latency_tables: unknown target {target!r}; allowed: "
                f"{', '.join(LATENCY_TARGETS)}"
            )
        # '' means "a table of this sweep's own space, kept in the workdir".
        tables[target] = Path(path) if path else workdir / f"latency-{target}.json"
    return tables


def _constraints(cfg: ConfigDict, tables: dict[str, Path]) -> dict[str, float]:
    out: dict[str, float] = {}
    for target, budget in (_plain(_get(cfg, "max_latency_ms", {})) or {}).items():
        name = LATENCY_PREFIX + target
        _check_metric_name("search.max_latency_ms", name, tables, allow_miou=False)
        out[name] = _positive(f"search.max_latency_ms.{target}", budget)
    for field, name in (("max_params", "params"), ("max_bytes", "bytes"), ("max_macs", "macs")):
        budget = _get(cfg, field, None)
        if budget is not None:
            out[name] = _positive(f"search.{field}", budget)
    return out


def _positive(field: str, value: Any) -> float:
    return check_number(field, value, lambda v: v > 0, "a number > 0")


def _int(cfg: ConfigDict, name: str, default: int, low: int) -> int:
    return check_int(f"search.{name}", _get(cfg, name, default), low)


def _num_trials(cfg: ConfigDict, strategy: str) -> int:
    # 0 = "every candidate" only makes sense where the candidates are a finite list.
    low = 0 if strategy in ("grid", "ablation") else 1
    allowed = "an integer >= 0 (0: every candidate)" if low == 0 else "an integer >= 1"
    return check_int("search.num_trials", _get(cfg, "num_trials", 12), low, allowed)


def spec_from_config(config: ConfigDict, workdir: Path) -> SearchSpec:
    """Checks `config.search`; UserError (one line naming field, value, allowed) otherwise."""
    cfg = config.get("search") if isinstance(config, ConfigDict) else None
    if cfg is None:
        raise UserError(
            "config: no `search` section; allowed: a config like experiments/quickstart.py"
        )
    strategy = _get(cfg, "strategy", "nsga2")
    if strategy not in STRATEGIES:
        raise UserError(f"search.strategy: got {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    space = _space(_get(cfg, "space", "seed000"))
    tables = _tables(_get(cfg, "latency_tables", {}), workdir)
    prune = _plain(_get(cfg, "prune", {})) or {}
    winners = _plain(_get(cfg, "winners", {})) or {}
    objectives = _objectives(_get(cfg, "objectives", (MIOU,)), tables)
    reference = {}
    for name, value in (_plain(_get(cfg, "reference_point", {})) or {}).items():
        if name not in objectives:
            raise UserError(
                f"search.reference_point: got {name!r}; allowed: one of the "
                f"objectives {', '.join(objectives)}"
            )
        reference[name] = float(value)
    name = _get(cfg, "study_name", "search")
    if not isinstance(name, str) or not name:
        raise UserError(f"search.study_name: got {name!r}; allowed: a non-empty string")
    return SearchSpec(
        study_name=name,
        strategy=strategy,
        space=space,
        baseline=_baseline(_get(cfg, "baseline", ""), space),
        num_trials=_num_trials(cfg, strategy),
        seed=_int(cfg, "seed", 0, 0),
        objectives=objectives,
        latency_tables=tables,
        build_missing_tables=bool(_get(cfg, "build_missing_tables", False)),
        constraints=_constraints(cfg, tables),
        train_infeasible=bool(_get(cfg, "train_infeasible", False)),
        population_size=_int(cfg, "population_size", 8, 2),
        startup_trials=_int(cfg, "startup_trials", 10, 0),
        prune=bool(prune.get("enabled", False)),
        prune_min_trials=int(prune.get("min_trials", 3)),
        prune_warmup_steps=int(prune.get("warmup_steps", 0)),
        heartbeat_interval=_int(cfg, "heartbeat_interval", 30, 1),
        grace_period=_int(cfg, "grace_period", 90, 1),
        max_retry=_int(cfg, "max_retry", 10, 0),
        max_failures=_int(cfg, "max_failures", 5, 1),
        max_duplicates=_int(cfg, "max_duplicates", 30, 1),
        evaluator=str(_get(cfg, "evaluator", "nas.train.loop:train_and_evaluate")),
        winners_max=int(winners.get("max_count", 3)),
        winners_quantize=str(winners.get("quantize", "none")),
        winners_output=str(winners.get("output", "logits")),
        reference_point=reference,
    )


def arch_from_params(params: dict[str, Any], spec: SearchSpec) -> Arch:
    """The baseline with each searched dimension set from the trial's parameters."""
    return spec.baseline.with_values({d: decode(d, params[d]) for d in spec.space.searched()})


def ablation_archs(spec: SearchSpec) -> list[Arch]:
    """Seed 000 Table 1's design: the baseline, then one dimension at a time around it."""
    archs = [spec.baseline]
    for dim in spec.space.searched():
        archs += spec.baseline.neighbours(spec.space, dim)
    seen: set[str] = set()
    return [a for a in archs if not (a.id in seen or seen.add(a.id))]


def planned_trials(spec: SearchSpec) -> int:
    """How many distinct architectures this sweep evaluates: num_trials (0: all of an ablation
    or grid), capped by how many exist."""
    available = len(ablation_archs(spec)) if spec.strategy == "ablation" else spec.space.size()
    return min(spec.num_trials or available, available)
