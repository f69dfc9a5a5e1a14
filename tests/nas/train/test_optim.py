"""Schedules at pinned steps, optimizers' weight decay (kernels only), clipping, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from nas.errors import UserError
from nas.train.optim import learning_rate_schedule, make_optimizer


def cfg(**overrides) -> ml_collections.ConfigDict:
    base = dict(
        optimizer="adam",
        lr=1.0,
        schedule="constant",
        warmup_steps=0,
        warmup_lr=0.0,
        end_lr=0.0,
        power=1.0,
        momentum=0.9,
        weight_decay=0.0,
        grad_clip_norm=0.0,
    )
    return ml_collections.ConfigDict({**base, **overrides})


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (dict(schedule="constant"), {0: 1.0, 5: 1.0, 10: 1.0}),
        (dict(schedule="poly"), {0: 1.0, 5: 0.5, 10: 0.0}),
        (dict(schedule="poly", power=0.9, end_lr=0.1), {5: 0.1 + 0.9 * 0.5**0.9, 10: 0.1}),
        (dict(schedule="warmup_poly", warmup_steps=2), {0: 0.0, 1: 0.5, 2: 1.0, 6: 0.5, 10: 0.0}),
        (dict(schedule="cosine"), {0: 1.0, 5: 0.5, 10: 0.0}),
        (
            dict(schedule="cosine", warmup_steps=2, warmup_lr=0.2),
            {0: 0.2, 1: 0.6, 2: 1.0, 6: 0.5, 10: 0.0},
        ),
        (
            dict(schedule="slow_start", warmup_steps=3, warmup_lr=0.1),
            {0: 0.1, 2: 0.1, 3: 1.0, 6: 4 / 7, 10: 0.0},
        ),
    ],
)
def test_schedules_at_pinned_steps(overrides, expected):
    schedule = learning_rate_schedule(cfg(**overrides), total_steps=10)
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, abs=1e-6), step


PARAMS = {"conv": {"kernel": jnp.ones((2, 2))}, "bias": jnp.ones((2,))}
ZERO = jax.tree.map(jnp.zeros_like, PARAMS)


def one_update(c: ml_collections.ConfigDict, grads=ZERO):
    tx, _ = make_optimizer(c, total_steps=10)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS)
    return optax.apply_updates(PARAMS, updates)


def test_adamw_decays_kernels_only():
    out = one_update(cfg(optimizer="adamw", weight_decay=0.1))
    np.testing.assert_allclose(out["conv"]["kernel"], 0.9, rtol=1e-6)
    np.testing.assert_allclose(out["bias"], 1.0)


def test_adamw_leaves_positional_embeddings_undecayed():
    # StrideFormer's `pos_embed` is rank 2 but not a kernel (its released recipe exempts it)
    params = {"conv": {"kernel": jnp.ones((2, 2))}, "pos": {"pos_embed": jnp.ones((16, 2))}}
    tx, _ = make_optimizer(cfg(optimizer="adamw", weight_decay=0.1), total_steps=10)
    zero = jax.tree.map(jnp.zeros_like, params)
    out = optax.apply_updates(params, tx.update(zero, tx.init(params), params)[0])
    np.testing.assert_allclose(out["conv"]["kernel"], 0.9, rtol=1e-6)
    np.testing.assert_allclose(out["pos"]["pos_embed"], 1.0)


def test_adam_couples_weight_decay_into_the_gradient():
    # the decay term 0.1 * p is the only gradient; Adam's first step moves by ~lr * sign
    out = one_update(cfg(optimizer="adam", weight_decay=0.1))
    np.testing.assert_allclose(out["conv"]["kernel"], 0.0, atol=1e-5)  # eps, float32
    np.testing.assert_allclose(out["bias"], 1.0)


def test_sgd_momentum_and_clipping():
    out = one_update(cfg(optimizer="sgd", weight_decay=0.1))
    np.testing.assert_allclose(out["conv"]["kernel"], 0.9, rtol=1e-6)
    np.testing.assert_allclose(out["bias"], 1.0)
    grads = {"conv": {"kernel": jnp.full((2, 2), 3.0)}, "bias": jnp.full((2,), 3.0)}
    norm = math.sqrt(6 * 9.0)
    out = one_update(cfg(optimizer="sgd", momentum=0.0, grad_clip_norm=1.0, lr=0.5), grads)
    np.testing.assert_allclose(out["bias"], 1.0 - 0.5 * 3.0 / norm, rtol=1e-6)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(schedule="step"), "train.schedule: got 'step'; allowed: constant, poly"),
        (dict(lr=0.0), "train.lr: got 0.0; allowed: a learning rate > 0"),
        (dict(lr="fast"), "train.lr: got 'fast'"),
        (dict(power=0), "train.power: got 0"),
        (dict(end_lr=-1.0), "train.end_lr: got -1.0"),
        (dict(warmup_lr=-1.0), "train.warmup_lr: got -1.0"),
        (
            dict(warmup_steps=10, schedule="warmup_poly"),
            r"warmup_steps: got 10; allowed: an "
            r"integer in \[0, train.steps=10\)",
        ),
        (dict(warmup_steps=1.5, schedule="cosine"), "train.warmup_steps: got 1.5"),
        (dict(optimizer="lamb"), "train.optimizer: got 'lamb'; allowed: adam, adamw, sgd"),
        (dict(optimizer="sgd", momentum=1.0), r"train.momentum: got 1.0; allowed: a momentum in"),
        (dict(weight_decay=-1e-4), "train.weight_decay: got -0.0001"),
        (dict(grad_clip_norm=-1), "train.grad_clip_norm: got -1"),
    ],
)
def test_bad_values_name_the_field(overrides, match):
    with pytest.raises(UserError, match=match):
        make_optimizer(cfg(**overrides), total_steps=10)
