"""Optimizers and learning-rate schedules from `config.train`, built from optax parts.

Optimizers (`train.optimizer`):
- `adam`: Adam with *coupled* weight decay (L2 added to the gradient before the moments), as
  seed 001 trains (Adam, weight decay 4e-5, poly schedule);
- `adamw`: decoupled weight decay (seed 002: AdamW, 0.01, warmup + poly);
- `sgd`: SGD with momentum (`train.momentum`) and coupled weight decay.
Weight decay applies to kernels only (arrays with more than one dimension), not to biases or
BatchNorm scales: decaying those only fights the normalisation.

Schedules (`train.schedule`), all of `train.steps` total steps (the length is derived here,
in the trainer, never in a config):
- `constant`: `lr`;
- `poly`: lr * (1 - t / steps) ** power down to `end_lr` (DeepLab's "poly", power 0.9);
- `warmup_poly`: linear from `warmup_lr` to `lr` over `warmup_steps`, then poly over the rest;
- `cosine`: optional linear warmup, then cosine decay to `end_lr`;
- `slow_start`: `warmup_lr` held for `warmup_steps` (DeepLab's slow start), then poly.
`grad_clip_norm` > 0 clips gradients by their global norm first.
"""

from __future__ import annotations

import jax
import ml_collections
import optax

from nas.errors import UserError, check_number

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "poly", "warmup_poly", "cosine", "slow_start")


def _number(
    cfg: ml_collections.ConfigDict, name: str, low: float, allowed: str, strict: bool = False
) -> float:
    return check_number(
        f"train.{name}",
        cfg.get(name),
        (lambda v: v > low) if strict else (lambda v: v >= low),
        allowed,
    )


def learning_rate_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """The schedule `cfg.schedule` over `total_steps` (see the module docstring)."""
    lr = _number(cfg, "lr", 0.0, "a learning rate > 0", strict=True)
    end = _number(cfg, "end_lr", 0.0, "a learning rate >= 0")
    power = _number(cfg, "power", 0.0, "a power > 0", strict=True)
    start = _number(cfg, "warmup_lr", 0.0, "a learning rate >= 0")
    warmup = cfg.get("warmup_steps")
    name = cfg.get("schedule")
    if name in ("constant", "poly"):  # no warmup phase: the field is not used
        warmup = 0
    if type(warmup) is not int or not 0 <= warmup < total_steps:
        raise UserError(
            f"train.warmup_steps: got {warmup!r}; allowed: an integer in "
            f"[0, train.steps={total_steps})"
        )
    rest = total_steps - warmup
    poly = optax.polynomial_schedule(lr, end, power, rest)
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "poly":
        return optax.polynomial_schedule(lr, end, power, total_steps)
    if name == "warmup_poly":
        return optax.join_schedules([optax.linear_schedule(start, lr, warmup), poly], [warmup])
    if name == "cosine":
        return optax.warmup_cosine_decay_schedule(
            start if warmup else lr, lr, warmup, total_steps, end
        )
    if name == "slow_start":
        return optax.join_schedules([optax.constant_schedule(start), poly], [warmup])
    raise UserError(f"train.schedule: got {name!r}; allowed: {', '.join(SCHEDULES)}")


def _kernels(params: optax.Params) -> optax.Params:
    # Weight decay on conv / dense kernels only: not on biases, BatchNorm scales or learned
    # positional embeddings (StrideFormer's `pos_embed`, which its released recipe exempts).
    return jax.tree_util.tree_map_with_path(
        lambda path, p: p.ndim > 1 and getattr(path[-1], "key", None) == "kernel", params
    )


def make_optimizer(
    cfg: ml_collections.ConfigDict, total_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(optimizer, schedule) for `config.train`."""
    schedule = learning_rate_schedule(cfg, total_steps)
    wd = _number(cfg, "weight_decay", 0.0, "a weight decay >= 0")
    clip = _number(cfg, "grad_clip_norm", 0.0, "a norm >= 0 (0 = no clipping)")
    name = cfg.get("optimizer")
    if name == "adam":
        tx = optax.chain(
            optax.add_decayed_weights(wd, _kernels),
            optax.scale_by_adam(),
            optax.scale_by_learning_rate(schedule),
        )
    elif name == "adamw":
        tx = optax.adamw(schedule, weight_decay=wd, mask=_kernels)
    elif name == "sgd":
        momentum = _number(cfg, "momentum", 0.0, "a momentum in [0, 1)")
        if momentum >= 1:
            raise UserError(f"train.momentum: got {momentum!r}; allowed: a momentum in [0, 1)")
        tx = optax.chain(
            optax.add_decayed_weights(wd, _kernels), optax.sgd(schedule, momentum=momentum or None)
        )
    else:
        raise UserError(f"train.optimizer: got {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    if clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    return tx, schedule
