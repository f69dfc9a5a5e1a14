"""Candidate training: pure `train_step` / `eval_step` over a `TrainState`, and the loop.

    result = train_and_evaluate(config, workdir)   # config: experiments/<name>.py get_config()
    result.status, result.metrics["val/miou"]

**Steps.** `make_train_step` / `make_eval_step` return pure functions of `(state, batch)`;
`jit_steps` compiles them over a `jax.sharding.Mesh` of all devices with one axis, `data`:
the batch is sharded on it, the state replicated, the train step donates its input state.
XLA inserts the cross-device reductions itself, so BatchNorm statistics and gradients are
those of the global batch and one device or eight give the same step (a test pins it). The
same code runs on one CPU, 8 GPUs or a TPU slice; with several hosts
(`jax.distributed.initialize`, when `train.distributed` is set or `JAX_COORDINATOR_ADDRESS`
is in the environment) each process reads its own share of every batch
(`process_index` / `process_count`) and `jax.make_array_from_process_local_data` assembles it.

**Resolution.** A batch whose images are not at the arch's resolution is resized inside the
step (images bilinear, masks nearest), for training and evaluation alike: as seed 000 does,
a model is trained on images scaled to its input resolution and scored against the ground
truth scaled to its output resolution. A search can thus vary `resolution` over one dataset.

**EMA.** With `train.ema` = d > 0 the state keeps an exponential moving average of the
params, updated with min(d, (1 + t) / (10 + t)) at step t (the usual warm-up, so a short run
is not dominated by the random initialisation), and evaluation uses it (seed 002: 0.999).

**BatchNorm statistics.** The models keep running statistics with momentum 0.99 (the
MobileNetV3 / EfficientNet-Lite convention, `models.layers.BN_MOMENTUM`). In a short run that
lags the fast-changing weights: evaluated with its running statistics, a model that already
separates the classes in training mode still predicts background only (measured on
toy_scenes: val/miou 0.15 vs 0.34 at step 300). `train.bn_momentum` = m sets another
momentum without touching the model: the step rescales the statistics update,
stats + (1 - m) / (1 - 0.99) * (new - stats), which is exactly a momentum-m update.

**The loop** (`train_and_evaluate`) resumes from the newest orbax checkpoint in
`WORKDIR/checkpoints` (batch k of the data pipeline is a function of (seed, k), so a resumed
run retraces the uninterrupted one), evaluates every `eval_every` steps and at the end,
checkpoints every `checkpoint_every` steps and at the end, and stops at `train.steps`, after
`train.max_minutes` (accumulated over restarts), or when `on_eval(step, metrics)` returns
True (the search driver's pruning). A non-finite loss or gradient ends the run with status
`diverged`; any other exception during training with `failed` (traceback in
`WORKDIR/error.log`); nothing escapes but `UserError` (a bad config, raised before training
starts) and KeyboardInterrupt (after a last checkpoint). The result is also written to
`WORKDIR/result.json`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from data import metrics as seg_metrics
from models.layers import BN_MOMENTUM
from models.segmenter import Segmenter
from nas.space.build import build_model
from nas.train import checkpoint
from nas.cli.common import load_arch_file
from nas.errors import UserError
from nas.train.losses import LossSpec, downsample_mask, loss_spec
from nas.train.optim import make_optimizer
from nas.space.presets import PRESETS
from nas.space.arch import Arch
from nas.train.writers import MetricWriter, MultiWriter, run_writers, wandb_mode

STATUSES = ("complete", "diverged", "failed")
OnEval = Callable[[int, Mapping[str, float]], bool]


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    ema_params: Any  # None when EMA is off
    rng: jax.Array


@dataclasses.dataclass
class TrainResult:
    """How a run ended. `wall_time_s` is this call's wall time; `metrics` holds the last
    step's train metrics and the last evaluation's `val/*` (always for `complete`)."""

    status: str
    step: int
    metrics: dict[str, float]
    wall_time_s: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- pure steps ---------------------------------------------------------------------------

def _fit(images: jax.Array, masks: jax.Array, hw: tuple[int, int]
         ) -> tuple[jax.Array, jax.Array]:
    """Images and masks at the model's input resolution (module docstring: Resolution)."""
    if tuple(images.shape[1:3]) != tuple(hw):
        images = jax.image.resize(images, (images.shape[0], *hw, images.shape[3]), "linear")
        masks = downsample_mask(masks, hw)
    return images, masks


def create_train_state(model: Segmenter, tx: optax.GradientTransformation,
                       hw: tuple[int, int], seed: int, ema: bool) -> TrainState:
    """The initial state (pure: jit it with an out_sharding to place it)."""
    init_rng, dropout_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed), 3)
    variables = model.init({"params": init_rng, "dropout": dropout_rng},
                           jnp.zeros((1, *hw, 3), jnp.float32), train=False)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
                      ema_params=params if ema else None, rng=state_rng)


def make_train_step(model: Segmenter, tx: optax.GradientTransformation, loss: LossSpec,
                    schedule: optax.Schedule, hw: tuple[int, int], ema_decay: float = 0.0,
                    bn_momentum: float = BN_MOMENTUM
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    # rescales the model's momentum-0.99 statistics update (module docstring)
    bn_scale = (1.0 - bn_momentum) / (1.0 - BN_MOMENTUM)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        images, masks = _fit(batch["image"], batch["mask"], hw)
        rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            (logits, aux), updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats}, images, train=True,
                mutable=["batch_stats"], rngs={"dropout": rng})
            total, parts = loss(logits, masks)
            if loss.aux_weight > 0:
                coarse = aux["coarse_logits"]
                parts["aux"], _ = loss(coarse, downsample_mask(masks, coarse.shape[1:3]))
                total = total + loss.aux_weight * parts["aux"]
            return total, (parts, updates.get("batch_stats", {}))

        (total, (parts, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params)
        if bn_scale != 1.0:
            batch_stats = jax.tree.map(lambda old, new: old + bn_scale * (new - old),
                                       state.batch_stats, batch_stats)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema_params = None
        if ema_decay > 0:
            t = state.step.astype(jnp.float32)
            d = jnp.minimum(ema_decay, (1.0 + t) / (10.0 + t))
            ema_params = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p,
                                      state.ema_params, params)
        metrics = {"train/loss": total, "train/grad_norm": optax.global_norm(grads),
                   "train/lr": schedule(state.step),
                   **{f"train/loss_{k}": v for k, v in parts.items()}}
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                                  opt_state=opt_state, ema_params=ema_params)
        return new_state, metrics

    return train_step


def make_eval_step(model: Segmenter, num_classes: int, hw: tuple[int, int], use_ema: bool,
                   ignore_index: int = 255) -> Callable[[TrainState, dict], jax.Array]:
    """(state, batch) -> (C, C) int32 confusion matrix of the batch (rows: ground truth)."""
    def eval_step(state: TrainState, batch: dict) -> jax.Array:
        images, masks = _fit(batch["image"], batch["mask"], hw)
        params = state.ema_params if use_ema else state.params
        logits, _ = model.apply({"params": params, "batch_stats": state.batch_stats}, images,
                                train=False)
        return seg_metrics.confusion_matrix_jax(jnp.argmax(logits, -1), masks, num_classes,
                                                ignore_index)

    return eval_step


# --- sharding -----------------------------------------------------------------------------

def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis ("data") mesh over `devices` (default: every device of every process)."""
    return Mesh(np.asarray(list(devices) if devices is not None else jax.devices()), ("data",))


def jit_steps(train_step: Callable, eval_step: Callable, mesh: Mesh
              ) -> tuple[Callable, Callable]:
    """Both steps jitted: batch sharded on "data", state replicated, train state donated."""
    repl, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    return (jax.jit(train_step, in_shardings=(repl, data), out_shardings=(repl, repl),
                    donate_argnums=0),
            jax.jit(eval_step, in_shardings=(repl, data), out_shardings=repl))


def global_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """This process's share of a batch -> global arrays sharded on "data"."""
    data = NamedSharding(mesh, P("data"))
    return {k: jax.make_array_from_process_local_data(data, np.asarray(batch[k]))
            for k in ("image", "mask")}


# --- configuration ------------------------------------------------------------------------

def resolve_arch(config: ml_collections.ConfigDict, arch: Arch | None, num_classes: int
                 ) -> Arch:
    """`arch`, else `config.arch`: a preset name, an arch JSON file, or a dict of Arch
    fields; its `num_classes` set to the dataset's."""
    if arch is None:
        spec = config.get("arch")
        if isinstance(spec, str) and spec in PRESETS:
            arch = PRESETS[spec]
        elif isinstance(spec, str) and spec.endswith(".json"):
            arch = load_arch_file(Path(spec))
        elif isinstance(spec, (ml_collections.ConfigDict, dict)):
            d = spec.to_dict() if isinstance(spec, ml_collections.ConfigDict) else dict(spec)
            try:
                arch = Arch.from_dict(d)
            except ValueError as e:
                raise UserError(f"config.arch: {e}") from None
        else:
            raise UserError(f"config.arch: got {spec!r}; allowed: a preset name "
                            f"({', '.join(PRESETS)}), a .json file or a dict of Arch fields")
    try:
        return arch.replace(num_classes=num_classes)
    except ValueError as e:
        raise UserError(f"config.arch: {e}") from None


def _int(cfg: ml_collections.ConfigDict, name: str, low: int) -> int:
    v = cfg.get(name)
    if type(v) is not int or v < low:
        raise UserError(f"train.{name}: got {v!r}; allowed: an integer >= {low}")
    return v


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The validated `config.train` numbers the loop needs."""

    steps: int
    batch_size: int
    eval_batch_size: int
    eval_every: int
    checkpoint_every: int
    log_every: int
    keep: int
    max_seconds: float
    ema: float
    bn_momentum: float
    seed: int

    @classmethod
    def from_config(cls, t: ml_collections.ConfigDict) -> "_Plan":
        n = jax.device_count()
        batch = _int(t, "batch_size", 1)
        eval_batch = t.get("eval_batch_size") or batch
        for name, b in (("batch_size", batch), ("eval_batch_size", eval_batch)):
            if b % n or b % jax.process_count():
                raise UserError(f"train.{name}: got {b}; allowed: a multiple of the device "
                                f"count {n} (the batch is split over devices)")
        ema = t.get("ema", 0.0)
        if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
            raise UserError(f"train.ema: got {ema!r}; allowed: a decay in [0, 1) (0 = off)")
        bn = t.get("bn_momentum", BN_MOMENTUM)
        if isinstance(bn, bool) or not isinstance(bn, (int, float)) or not 0 < bn < 1:
            raise UserError(f"train.bn_momentum: got {bn!r}; allowed: a momentum in (0, 1) "
                            f"(the models' own: {BN_MOMENTUM})")
        minutes = t.get("max_minutes", 0)
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0:
            raise UserError(f"train.max_minutes: got {minutes!r}; allowed: minutes >= 0 "
                            "(0 = no limit)")
        return cls(steps=_int(t, "steps", 1), batch_size=batch, eval_batch_size=eval_batch,
                   eval_every=_int(t, "eval_every", 0),
                   checkpoint_every=_int(t, "checkpoint_every", 1),
                   log_every=_int(t, "log_every", 1), keep=_int(t, "keep_checkpoints", 1),
                   max_seconds=60.0 * minutes, ema=float(ema), bn_momentum=float(bn),
                   seed=_int(t, "seed", 0))


def maybe_initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """`jax.distributed.initialize` when `train.distributed` or the environment asks.

    The coordinator comes from the cluster (SLURM, Open MPI, Kubernetes and Cloud TPU are
    detected by jax) or from JAX_COORDINATOR_ADDRESS with JAX_NUM_PROCESSES and
    JAX_PROCESS_ID. Must run before anything touches a device.
    """
    asked = bool(config.get("train", {}).get("distributed", False))
    if not (asked or os.environ.get("JAX_COORDINATOR_ADDRESS")) or \
            jax.distributed.is_initialized():
        return
    env = {k: int(os.environ[v]) for k, v in (("num_processes", "JAX_NUM_PROCESSES"),
                                              ("process_id", "JAX_PROCESS_ID"))
           if v in os.environ}
    jax.distributed.initialize(**env)


def _enable_compilation_cache() -> None:
    """Persist compiled steps across processes (default ~/.cache/segnas/jax, or wherever
    JAX_COMPILATION_CACHE_DIR points): a resumed run, a smoke test or a search re-training
    an arch then loads its train step in ~2 s instead of compiling it for 10-30 s on CPU."""
    if not jax.config.jax_compilation_cache_dir:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        jax.config.update("jax_compilation_cache_dir", str(base / "segnas" / "jax"))


def _agree(flag: bool) -> bool:
    """Process 0's decision, so that every host stops at the same step."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


# --- the loop -----------------------------------------------------------------------------

def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *,
                       arch: Arch | None = None, writer_extra: Sequence[MetricWriter] = (),
                       on_eval: OnEval | None = None) -> TrainResult:
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
        raise UserError(f"data.name: got {config.data.name!r}, a video dataset; allowed: an "
                        "image dataset (video training is not in this trainer)")
    arch = resolve_arch(config, arch, info.num_classes)
    arch_file = workdir / "arch.json"
    if arch_file.exists() and load_arch_file(arch_file) != arch:
        raise UserError(f"workdir: {str(workdir)!r} holds a run of another arch "
                        f"({load_arch_file(arch_file).id}, this one is {arch.id}); allowed: "
                        "a new workdir, or the same arch to resume")
    plan = _Plan.from_config(config.train)
    wandb_mode(config)
    loss = loss_spec(config.train.loss, info.num_classes, info.ignore_index)
    tx, schedule = make_optimizer(config.train, plan.steps)
    model, hw = build_model(arch), arch.resolution
    if loss.aux_weight > 0:
        _, aux = jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(0), x),
                                jnp.zeros((1, *hw, 3)))[0]
        if "coarse_logits" not in aux:
            raise UserError(f"train.loss.aux_weight: got {loss.aux_weight}; allowed: 0 for "
                            f"decoder {arch.decoder!r}, which predicts no coarse mask")

    status, message, step = "complete", "", 0
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    steady_s, steady_steps, window_s, window_steps = 0.0, 0, 0.0, 0
    mngr, writers = None, None
    pi, pc = jax.process_index(), jax.process_count()
    try:  # from here on, a crash is a failed candidate, not an exception
        mesh = make_mesh()
        repl = NamedSharding(mesh, P())
        train_step, eval_step = jit_steps(
            make_train_step(model, tx, loss, schedule, hw, plan.ema, plan.bn_momentum),
            make_eval_step(model, info.num_classes, hw, plan.ema > 0, info.ignore_index),
            mesh)
        init = jax.jit(lambda: create_train_state(model, tx, hw, plan.seed, plan.ema > 0),
                       out_shardings=repl)
        abstract = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=repl), jax.eval_shape(init))
        mngr = checkpoint.manager(workdir, plan.keep)
        restored = checkpoint.restore_latest(mngr, abstract)
        state, meta = restored if restored else (init(), {})
        start_step, elapsed0 = int(state.step), float(meta.get("elapsed_s", 0.0))
        if pi == 0:
            checkpoint.write_json(workdir / "config.json", config.to_dict())
            checkpoint.write_json(arch_file, arch.to_dict())
        writers = (run_writers(config, workdir, arch, plan.steps, start_step, writer_extra)
               if pi == 0 else MultiWriter(list(writer_extra)))  # host 0 reports

        t_loop = time.time()

        def elapsed() -> float:
            return elapsed0 + time.time() - t_loop

        def run_eval() -> dict[str, float]:
            cm = np.zeros((info.num_classes,) * 2, np.int64)
            for b in pipeline.eval_batches(config.data, plan.eval_batch_size // pc,
                                           process_index=pi, process_count=pc):
                cm += np.asarray(jax.device_get(eval_step(state, global_batch(b, mesh))))
            summary = seg_metrics.summarize(cm, info.class_names)
            out = {f"val/{k}": v for k, v in summary.items()}
            return {**out, "train/elapsed_s": elapsed()}

        def save(step: int) -> None:
            checkpoint.save(mngr, step, state, {"arch": arch.to_dict(), "elapsed_s": elapsed(),
                                                "ema": plan.ema > 0})

        step = start_step
        if step < plan.steps:
            batches = pipeline.train_batches(config.data, plan.batch_size // pc,
                                             seed=plan.seed, start_step=start_step,
                                             process_index=pi, process_count=pc)
            batch = global_batch(next(batches), mesh)
        t0 = time.time()
        while step < plan.steps:
            state, m = train_step(state, batch)
            if step + 1 < plan.steps:  # the host reads the next batch while the step runs
                batch = global_batch(next(batches), mesh)
            m = {k: float(v) for k, v in jax.device_get(m).items()}
            dt, step = time.time() - t0, step + 1
            if step == start_step + 1:
                m["train/compile_s"] = dt  # the first step of a process includes compiling
            else:
                steady_s, steady_steps = steady_s + dt, steady_steps + 1
                window_s, window_steps = window_s + dt, window_steps + 1
            last_train = m
            if not (math.isfinite(m["train/loss"]) and math.isfinite(m["train/grad_norm"])):
                status = "diverged"
                message = (f"train/loss is {m['train/loss']} (grad norm "
                           f"{m['train/grad_norm']}) at step {step}: the run diverged; lower "
                           "train.lr or set train.grad_clip_norm (last checkpoint: step "
                           f"{mngr.latest_step()})")
                writers.write(step, m)
                break
            if step % plan.log_every == 0 or step == plan.steps:
                if window_steps:
                    m["train/images_per_s"] = plan.batch_size * window_steps / window_s
                window_s, window_steps = 0.0, 0
                writers.write(step, m)
            stop = _agree(plan.max_seconds > 0 and elapsed() >= plan.max_seconds)
            if stop:
                message = f"stopped at train.max_minutes after step {step}"
            if stop or step == plan.steps or (plan.eval_every and step % plan.eval_every == 0):
                last_eval = run_eval()
                writers.write(step, last_eval)
                if on_eval is not None and not stop and step < plan.steps and \
                        _agree(bool(on_eval(step, last_eval))):
                    stop, message = True, f"stopped by on_eval after step {step}"
            if stop or step == plan.steps or step % plan.checkpoint_every == 0:
                save(step)
            if stop:
                break
            t0 = time.time()
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
    result = TrainResult(status, step, metrics, time.time() - t_call, message)
    if pi == 0:
        checkpoint.write_json(workdir / "result.json", {
            **result.to_dict(), "metrics": {k: (v if math.isfinite(v) else None)
                                            for k, v in metrics.items()}})
    return result
