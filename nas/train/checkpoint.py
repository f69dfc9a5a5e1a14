"""Checkpoints of a training run (orbax), and loading a finished run back.

A run's workdir holds:
- `checkpoints/<step>/` (orbax `CheckpointManager`): `state` (the whole `TrainState`:
  params, BatchNorm statistics, optimizer state, EMA params, step and rng) and `meta` (JSON:
  the arch, the accumulated training seconds, whether EMA params are the ones evaluated);
- `config.json` and `arch.json`, written when the run starts.

Saves are asynchronous and atomic (orbax writes to a temporary folder and renames it when
complete), so a run killed mid-save restarts from the previous complete checkpoint; stale
temporary folders are removed when the manager opens.

`load_run(workdir)` is what export and analysis use: the arch and the variables the run
evaluated with (`params` = EMA params when EMA was on), without rebuilding the optimizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from nas.errors import UserError
from nas.space.arch import Arch

CHECKPOINTS = "checkpoints"


def manager(workdir: str | Path, keep: int = 3, read_only: bool = False) -> ocp.CheckpointManager:
    """An Orbax manager of `workdir/checkpoints` keeping the newest `keep` steps."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not read_only,
        cleanup_tmp_directories=not read_only,
        read_only=read_only,
    )
    return ocp.CheckpointManager(Path(workdir).absolute() / CHECKPOINTS, options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Starts an asynchronous save of `state` and `meta` at `step` (no-op if it exists)."""
    if step in mngr.all_steps():
        return
    mngr.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        force=True,
    )


def restore_latest(
    mngr: ocp.CheckpointManager, abstract_state: Any
) -> tuple[Any, dict[str, Any]] | None:
    """(state, meta) of the newest checkpoint, laid out like `abstract_state` (a pytree of
    `jax.ShapeDtypeStruct` with shardings); None when there is none."""
    step = mngr.latest_step()
    if step is None:
        return None
    out = mngr.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
        ),
    )
    return out.state, dict(out.meta)


def load_run(
    workdir: str | Path, step: int | None = None
) -> tuple[Arch, dict[str, Any], dict[str, Any]]:
    """(arch, variables {"params", "batch_stats"}, meta) of a training run's checkpoint.

    `step` defaults to the newest. UserError when the folder holds no readable checkpoint.
    """
    workdir = Path(workdir)
    if not (workdir / CHECKPOINTS).is_dir():
        raise UserError(
            f"workdir: {str(workdir)!r} has no {CHECKPOINTS}/ folder; allowed: "
            "the --workdir of a `segnas train` run"
        )
    mngr = manager(workdir, read_only=True)
    step = mngr.latest_step() if step is None else step
    if step is None or step not in mngr.all_steps():
        raise UserError(
            f"workdir: no checkpoint{'' if step is None else f' at step {step}'} "
            f"in {str(workdir / CHECKPOINTS)!r}; allowed: steps "
            f"{list(mngr.all_steps())}"
        )
    try:
        out = mngr.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()),
        )
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"workdir: checkpoint {step} in {str(workdir)!r} is unreadable "
            f"({type(e).__name__}: {e}); allowed: a complete orbax checkpoint"
        ) from None
    meta, state = dict(out.meta), out.state
    ema = bool(meta.get("ema"))
    params = state["ema_params"] if ema else state["params"]
    # the averaged statistics belong to the averaged params (runs saved before they were kept
    # have none: their raw statistics)
    stats = state.get("ema_batch_stats") if ema else None
    variables = {
        "params": jax.device_get(params),
        "batch_stats": jax.device_get(stats if stats is not None else state["batch_stats"]),
    }
    return Arch.from_dict(meta["arch"]), variables, meta
