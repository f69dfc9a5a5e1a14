"""Pure `train_step` / `eval_step` functions of `(state, batch)`.

**Resolution.** A batch whose images are not at the arch's resolution is resized inside the
step (images bilinear), so a search can vary `resolution` over one dataset. Training compares
the logits with the masks resized by nearest neighbour to the model's output resolution (its
input resolution). Evaluation follows `train.eval_protocol` (`EVAL_PROTOCOLS`):

- `label` (the default): the logits are upsampled bilinearly (half-pixel centres, the
  models' `upsample_bilinear`) to the masks' own resolution and scored against the ground
  truth as the batch carries it, as Cityscapes / ADE20K scores are computed; a model at a
  lower resolution is scored on the same pixels as one at a higher. (Logits larger than the
  masks are shrunk with jax.image.resize's antialiased bilinear filter.)
- `output` (seed 000's protocol): the masks are shrunk by nearest neighbour to the model's
  output resolution and scored there.

Either way `IGNORE_INDEX` pixels (void, batch padding) are counted nowhere.

**EMA.** With `train.ema` = d > 0 the state keeps an exponential moving average of the
params, updated with min(d, (1 + t) / (10 + t)) at step t (the usual warm-up, so a short run
is not dominated by the random initialisation), and evaluation uses it (seed 002: 0.999). The
BatchNorm running statistics are averaged the same way and evaluated with the averaged
params: the raw model's statistics belong to the raw weights, not to their average.

**BatchNorm statistics.** The models keep running statistics with momentum 0.99 (the
MobileNetV3 / EfficientNet-Lite convention, `models.layers.BN_MOMENTUM`). In a short run that
lags the fast-changing weights: evaluated with its running statistics, a model that already
separates the classes in training mode still predicts background only (measured on
toy_scenes: val/miou 0.15 vs 0.34 at step 300). `train.bn_momentum` = m sets another
momentum without touching the model: the step rescales the statistics update,
stats + (1 - m) / (1 - 0.99) * (new - stats), which is exactly a momentum-m update.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from data import metrics as seg_metrics
from data.labels import IGNORE_INDEX
from models.layers import BN_MOMENTUM
from models.segmenter import Segmenter
from nas.train.losses import LossSpec, downsample_mask
from nas.train.state import TrainState

# train.eval_protocol's values (module docstring); the first is the default.
EVAL_PROTOCOLS: tuple[str, ...] = ("label", "output")


def fit_to(images: jax.Array, masks: jax.Array, hw: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """Images and masks at the model's input resolution (module docstring: Resolution)."""
    if tuple(images.shape[1:3]) != tuple(hw):
        images = jax.image.resize(images, (images.shape[0], *hw, images.shape[3]), "linear")
        masks = downsample_mask(masks, hw)
    return images, masks


def make_train_step(
    model: Segmenter,
    tx: optax.GradientTransformation,
    loss: LossSpec,
    schedule: optax.Schedule,
    hw: tuple[int, int],
    ema_decay: float = 0.0,
    bn_momentum: float = BN_MOMENTUM,
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The jit-able train step; `bn_momentum` rescales the statistics update (module
    docstring)."""
    # rescales the model's momentum-0.99 statistics update (module docstring)
    bn_scale = (1.0 - bn_momentum) / (1.0 - BN_MOMENTUM)

    def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        images, masks = fit_to(batch["image"], batch["mask"], hw)
        rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            (logits, aux), updates = model.apply(
                {"params": params, "batch_stats": state.batch_stats},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": rng},
            )
            total, parts = loss(logits, masks)
            if loss.aux_weight > 0:
                coarse = aux["coarse_logits"]
                parts["aux"], _ = loss(coarse, downsample_mask(masks, coarse.shape[1:3]))
                total = total + loss.aux_weight * parts["aux"]
            return total, (parts, updates.get("batch_stats", {}))

        (total, (parts, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        if bn_scale != 1.0:
            batch_stats = jax.tree.map(
                lambda old, new: old + bn_scale * (new - old), state.batch_stats, batch_stats
            )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema_params = ema_stats = None
        if ema_decay > 0:
            t = state.step.astype(jnp.float32)
            d = jnp.minimum(ema_decay, (1.0 + t) / (10.0 + t))
            ema_params = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema_params, params)
            ema_stats = jax.tree.map(
                lambda e, s: d * e + (1.0 - d) * s, state.ema_batch_stats, batch_stats
            )
        metrics = {
            "train/loss": total,
            "train/grad_norm": optax.global_norm(grads),
            "train/lr": schedule(state.step),
            **{f"train/loss_{k}": v for k, v in parts.items()},
        }
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            batch_stats=batch_stats,
            opt_state=opt_state,
            ema_params=ema_params,
            ema_batch_stats=ema_stats,
        )
        return new_state, metrics

    return train_step


def resize_logits(logits: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """(N, h, w, C) logits at (N, *hw, C): half-pixel bilinear, as `upsample_bilinear` when
    upsampling (antialiased when shrinking, where that one refuses)."""
    if tuple(logits.shape[1:3]) == tuple(hw):
        return logits
    return jax.image.resize(logits, (logits.shape[0], *hw, logits.shape[3]), "linear")


def make_eval_step(
    model: Segmenter,
    num_classes: int,
    hw: tuple[int, int],
    use_ema: bool,
    ignore_index: int = IGNORE_INDEX,
    protocol: str = EVAL_PROTOCOLS[0],
) -> Callable[[TrainState, dict], jax.Array]:
    """(state, batch) -> (C, C) int32 confusion matrix of the batch (rows: ground truth),
    scored by `protocol` (module docstring: Resolution)."""
    if protocol not in EVAL_PROTOCOLS:
        raise ValueError(f"protocol: got {protocol!r}; allowed: {', '.join(EVAL_PROTOCOLS)}")

    def eval_step(state: TrainState, batch: dict) -> jax.Array:
        images, small_masks = fit_to(batch["image"], batch["mask"], hw)
        params = state.ema_params if use_ema else state.params
        stats = state.ema_batch_stats if use_ema else state.batch_stats
        logits, _ = model.apply({"params": params, "batch_stats": stats}, images, train=False)
        if protocol == "output":
            masks = small_masks
        else:  # the ground truth as the batch carries it; the logits come to it
            masks = batch["mask"]
            logits = resize_logits(logits, masks.shape[1:3])
        return seg_metrics.confusion_matrix_jax(
            jnp.argmax(logits, -1), masks, num_classes, ignore_index
        )

    return eval_step
