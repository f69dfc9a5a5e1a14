"""The training loop: `train_and_evaluate(config, workdir)`.

    result = train_and_evaluate(config, workdir)   # config: experiments/<name>.py get_config()
    result.status, result.metrics["val/miou"]

The steps are `nas.train.steps`, sharded by `nas.train.sharding`; the config is validated by
`nas.train.plan` before anything runs.

**The loop** (`train_and_evaluate`) resumes from the newest orbax checkpoint in
`WORKDIR/checkpoints` (a fresh run starts from `train.init_from`'s pretrained encoder when
set, `nas.weights`; batch k of the data pipeline is a function of (seed, k), so a resumed
run retraces the uninterrupted one), evaluates every `eval_every` steps and at the end,
checkpoints every `checkpoint_every` steps, after every `checkpoint_minutes` (default 1) of
training since the last one (so a kill loses at most that much) and at the end, and stops at
`train.steps`, after
`train.max_minutes` of training and evaluation (accumulated over restarts), or when
`on_eval(step, metrics)` returns True (the search driver's pruning).

**Budgets.** A run's budget is its step count, `train.steps` (`TrainResult.step_budget`).
Compilation is never charged to it: the train step is compiled ahead of time before the
clock starts, the eval step at its first use with its compile time taken off the clock
(`nas.train.sharding.AotStep`); the seconds go to `TrainResult.compile_s`. `train.max_minutes`
caps only the time spent training and evaluating (`TrainResult.train_s`, checkpoint meta
`elapsed_s`), as a safety net against a stalled run.

**Statuses** (`nas.train.result`): `complete` (the step budget was reached, a resumed finished
run was scored again, or `on_eval` stopped it), `timeout` (`train.max_minutes` stopped it
before its step budget; the message names the step, and the metrics hold a final evaluation
of the state reached), `diverged` (a non-finite loss or gradient), `failed` (any other
exception during training; traceback in `WORKDIR/error.log`). Nothing escapes but
`UserError` (a bad config, raised before training starts) and KeyboardInterrupt (after a last
checkpoint). The result is also written to `WORKDIR/result.json`.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from data import metrics as seg_metrics
from nas.errors import UserError
from nas.io import write_json
from nas.space.arch import Arch
from nas.space.build import build_model
from nas.space.resolve import load_arch_file
from nas.train import checkpoint
from nas.train.losses import loss_spec
from nas.train.optim import make_optimizer
from nas.train.plan import Plan, resolve_arch
from nas.train.result import TrainResult
from nas.train.sharding import (
    INIT_COMPILE_OPTIONS,
    AotStep,
    agree,
    global_batch,
    jit_steps,
    make_mesh,
    maybe_initialize_distributed,
)
from nas.train.state import create_train_state
from nas.train.steps import make_eval_step, make_train_step
from nas.train.writers import MetricWriter, MultiWriter, run_writers, wandb_mode
from nas.weights.apply import from_config as init_from_config
from nas.weights.apply import start_state

OnEval = Callable[[int, Mapping[str, float]], bool]


def _enable_compilation_cache() -> None:
    """Persist compiled steps across processes (default ~/.cache/segnas/jax, or wherever
    JAX_COMPILATION_CACHE_DIR points): a resumed run, a smoke test or a search re-training
    an arch then loads its train step in ~2 s instead of compiling it for 10-30 s on CPU."""
    if not jax.config.jax_compilation_cache_dir:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        jax.config.update("jax_compilation_cache_dir", str(base / "segnas" / "jax"))


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    arch: Arch | None = None,
    writer_extra: Sequence[MetricWriter] = (),
    on_eval: OnEval | None = None,
) -> TrainResult:
    """Trains `arch` (default: `config.arch`) as `config` says, in `workdir` (resuming the
    run found there); see the module docstring for stopping rules and statuses.

    `writer_extra`: more metric writers (e.g. the search driver's); `on_eval(step, metrics)`
    is called after every evaluation but the last and stops the run when it returns True.
    """
    t_call = time.time()
    _enable_compilation_cache()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    maybe_initialize_distributed(config)
    from data import pipeline  # TensorFlow loads only when a run starts

    info = pipeline.dataset_info(config.data)
    if info.is_video:
        raise UserError(
            f"data.name: got {config.data.name!r}, a video dataset; allowed: an "
            "image dataset (video training is not in this trainer)"
        )
    arch = resolve_arch(config, arch, info.num_classes)
    arch_file = workdir / "arch.json"
    if arch_file.exists() and load_arch_file(arch_file) != arch:
        raise UserError(
            f"workdir: {str(workdir)!r} holds a run of another arch "
            f"({load_arch_file(arch_file).id}, this one is {arch.id}); allowed: "
            "a new workdir, or the same arch to resume"
        )
    plan = Plan.from_config(config.train)
    wandb_mode(config)
    loss = loss_spec(config.train.loss, info.num_classes, info.ignore_index)
    tx, schedule = make_optimizer(config.train, plan.steps)
    model, hw = build_model(arch), arch.resolution
    # read and checked now: a bad file is a UserError before anything runs
    pretrained = init_from_config(config.train, arch)
    if loss.aux_weight > 0:
        _, aux = jax.eval_shape(
            lambda x: model.init_with_output(jax.random.PRNGKey(0), x), jnp.zeros((1, *hw, 3))
        )[0]
        if "coarse_logits" not in aux:
            raise UserError(
                f"train.loss.aux_weight: got {loss.aux_weight}; allowed: 0 for "
                f"decoder {arch.decoder.name!r}, which predicts no coarse mask"
            )

    status, message, step = "complete", "", 0
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    steady_s, steady_steps, window_s, window_steps = 0.0, 0, 0.0, 0
    mngr, writers = None, None
    aot: list[AotStep] = []  # the train and eval steps, their compile seconds kept apart
    pi, pc = jax.process_index(), jax.process_count()
    elapsed0, t_loop, compiled_before = 0.0, None, 0.0

    def compile_s() -> float:
        return sum(a.seconds for a in aot)

    def elapsed() -> float:
        # training and evaluation over restarts; a compile inside the loop (the eval step's
        # first call) is taken off the clock
        if t_loop is None:
            return elapsed0
        return elapsed0 + time.time() - t_loop - (compile_s() - compiled_before)

    try:  # from here on, a crash is a failed candidate, not an exception
        mesh = make_mesh()
        repl = NamedSharding(mesh, P())
        aot.extend(
            AotStep(f)
            for f in jit_steps(
                make_train_step(model, tx, loss, schedule, hw, plan.ema, plan.bn_momentum),
                make_eval_step(
                    model, info.num_classes, hw, plan.ema > 0, info.ignore_index, plan.eval_protocol
                ),
                mesh,
            )
        )
        train_step, eval_step = aot[:2]
        init = jax.jit(
            lambda: create_train_state(model, tx, hw, plan.seed, plan.ema > 0), out_shardings=repl
        )
        init_step = AotStep(init, INIT_COMPILE_OPTIONS)  # runs once: compiled cheaply
        aot.append(init_step)
        abstract = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), jax.eval_shape(init)
        )
        mngr = checkpoint.manager(workdir, plan.keep)
        restored = checkpoint.restore_latest(mngr, abstract)
        state, meta = restored if restored else (init_step(), {})
        if not restored and pretrained is not None:  # a resumed run keeps what it learnt
            state = jax.device_put(start_state(state, pretrained), repl)
        start_step, elapsed0 = int(state.step), float(meta.get("elapsed_s", 0.0))
        if pi == 0:
            write_json(workdir / "config.json", config.to_dict())
            write_json(arch_file, arch.to_dict())
        writers = (
            run_writers(config, workdir, arch, plan.steps, start_step, writer_extra)
            if pi == 0
            else MultiWriter(list(writer_extra))
        )  # host 0 reports

        step = start_step
        if step < plan.steps:
            batches = pipeline.train_batches(
                config.data,
                plan.batch_size // pc,
                seed=plan.seed,
                start_step=start_step,
                process_index=pi,
                process_count=pc,
            )
            batch = global_batch(next(batches), mesh)
            train_step.compile(state, batch)  # before the clock starts (module docstring)

        t_loop, compiled_before = time.time(), compile_s()

        def run_eval() -> dict[str, float]:
            cm = np.zeros((info.num_classes,) * 2, np.int64)
            for b in pipeline.eval_batches(
                config.data, plan.eval_batch_size // pc, process_index=pi, process_count=pc
            ):
                cm += np.asarray(jax.device_get(eval_step(state, global_batch(b, mesh))))
            summary = seg_metrics.summarize(cm, info.class_names)
            out = {f"val/{k}": v for k, v in summary.items()}
            return {**out, "train/elapsed_s": elapsed()}

        def save(step: int) -> None:
            checkpoint.save(
                mngr,
                step,
                state,
                {"arch": arch.to_dict(), "elapsed_s": elapsed(), "ema": plan.ema > 0},
            )

        t0, c0 = time.time(), train_step.seconds
        last_save = time.time()
        while step < plan.steps:
            state, m = train_step(state, batch)
            if step + 1 < plan.steps:  # the host reads the next batch while the step runs
                batch = global_batch(next(batches), mesh)
            m = {k: float(v) for k, v in jax.device_get(m).items()}
            # a recompile (a new input signature) is not step time
            dt, step = time.time() - t0 - (train_step.seconds - c0), step + 1
            if step == start_step + 1:
                m["train/compile_s"] = train_step.seconds  # logged once per process
            steady_s, steady_steps = steady_s + dt, steady_steps + 1
            window_s, window_steps = window_s + dt, window_steps + 1
            last_train = m
            if not (math.isfinite(m["train/loss"]) and math.isfinite(m["train/grad_norm"])):
                status = "diverged"
                message = (
                    f"train/loss is {m['train/loss']} (grad norm "
                    f"{m['train/grad_norm']}) at step {step}: the run diverged; lower "
                    "train.lr or set train.grad_clip_norm (last checkpoint: step "
                    f"{mngr.latest_step()})"
                )
                writers.write(step, m)
                break
            if step % plan.log_every == 0 or step == plan.steps:
                if window_steps:
                    m["train/images_per_s"] = plan.batch_size * window_steps / window_s
                window_s, window_steps = 0.0, 0
                writers.write(step, m)
            stop = agree(plan.max_seconds > 0 and elapsed() >= plan.max_seconds)
            if stop and step < plan.steps:
                status = "timeout"
                message = (
                    f"stopped by train.max_minutes ({plan.max_seconds / 60:g} min of training "
                    f"and evaluation) at step {step} of {plan.steps}"
                )
            if stop or step == plan.steps or (plan.eval_every and step % plan.eval_every == 0):
                last_eval = run_eval()
                writers.write(step, last_eval)
                if (
                    on_eval is not None
                    and not stop
                    and step < plan.steps
                    and agree(bool(on_eval(step, last_eval)))
                ):
                    stop, message = True, f"stopped by on_eval after step {step}"
            # by steps, and by time: a kill loses at most plan.checkpoint_seconds of training
            due = agree(
                plan.checkpoint_seconds > 0 and time.time() - last_save >= plan.checkpoint_seconds
            )
            if stop or step == plan.steps or step % plan.checkpoint_every == 0 or due:
                save(step)
                last_save = time.time()
            if stop:
                break
            t0, c0 = time.time(), train_step.seconds
        if status == "complete" and not last_eval:  # resumed a finished run: score it again
            last_eval = run_eval()
            writers.write(step, last_eval)
    except KeyboardInterrupt:
        try:  # keep what was trained; the state may already be donated to a dead step
            save(int(state.step))
        except Exception:  # noqa: BLE001 - nothing more can be saved
            pass
        raise
    except Exception as e:  # noqa: BLE001 - a failed candidate must not crash a search
        status, message = "failed", f"{type(e).__name__}: {e}"
        if pi == 0:
            (workdir / "error.log").write_text(traceback.format_exc())
    finally:
        if mngr is not None:
            mngr.wait_until_finished()
            mngr.close()
        if writers is not None:
            writers.close()
    metrics = {**last_train, **last_eval}
    if steady_steps:
        metrics["train/images_per_s"] = plan.batch_size * steady_steps / steady_s
    result = TrainResult(
        status,
        step,
        metrics,
        time.time() - t_call,
        message,
        step_budget=plan.steps,
        compile_s=compile_s(),
        train_s=elapsed(),
    )
    if pi == 0:
        write_json(
            workdir / "result.json",
            {
                **result.to_dict(),
                "metrics": {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
            },
        )
    return result
