"""The pure steps on a tiny model: learning, determinism, EMA, auxiliary loss, evaluation,
in-step resizing."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from models.layers import ConvBNAct
from nas.train.losses import LossSpec
from nas.train.state import create_train_state
from nas.train.steps import fit_to, make_eval_step, make_train_step
from tests.nas.train.helpers import Tiny

HW = (8, 8)


def batch(seed: int = 0, n: int = 4) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    image = rng.normal(size=(n, *HW, 3)).astype(np.float32)
    # a learnable rule: the class is where channel 0 is largest, binned into 3 classes
    mask = np.digitize(image[..., 0], [-0.5, 0.5]).astype(np.int32)
    mask[:, 0, 0] = 255
    return {"image": jnp.asarray(image), "mask": jnp.asarray(mask)}


def setup(loss=LossSpec({"ce": 1.0}), ema=0.0, lr=0.05):  # noqa: B008 (a frozen value)
    model, tx = Tiny(), optax.adam(lr)
    state = create_train_state(model, tx, HW, seed=0, ema=ema > 0)
    step = jax.jit(make_train_step(model, tx, loss, optax.constant_schedule(lr), HW, ema))
    return model, state, step


def test_train_step_learns_and_is_deterministic():
    _, state, step = setup()
    b = batch()
    losses = []
    for _ in range(30):
        state, m = step(state, b)
        losses.append(float(m["train/loss"]))
    assert int(state.step) == 30
    assert losses[-1] < 0.5 * losses[0], losses
    assert set(m) == {"train/loss", "train/loss_ce", "train/grad_norm", "train/lr"}
    assert float(m["train/lr"]) == pytest.approx(0.05)
    _, again, step2 = setup()
    for _ in range(30):
        again, m2 = step2(again, b)
    assert float(m2["train/loss"]) == losses[-1]  # bit-exact: same program, same batches
    # BatchNorm statistics moved away from their initial values
    assert float(jnp.abs(state.batch_stats["bn"]["mean"]).sum()) > 0


def test_ema_uses_warmed_up_decay():
    _, state, step = setup(ema=0.5)
    init = state.params
    new, _ = step(state, batch())
    # step 0: decay min(0.5, 1 / 10) = 0.1
    expected = jax.tree.map(lambda e, p: 0.1 * e + 0.9 * p, init, new.params)
    for a, b in zip(jax.tree.leaves(new.ema_params), jax.tree.leaves(expected), strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    late = new.replace(step=jnp.asarray(100, jnp.int32))  # decay min(0.5, 101 / 110) = 0.5
    after, _ = step(late, batch(1))
    expected = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, new.ema_params, after.params)
    for a, b in zip(jax.tree.leaves(after.ema_params), jax.tree.leaves(expected), strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    _, off, _ = setup(ema=0.0)
    assert off.ema_params is None


class OneBN(nn.Module):
    """A 1x1 ConvBNAct with the models' own BatchNorm (momentum 0.99) as the whole segmenter."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, dict]:
        return ConvBNAct(3, act="none", name="cba")(x, train), {}


def test_bn_momentum_sets_the_running_statistics_of_a_momentum_0_99_model():
    model, tx = OneBN(), optax.adam(0.05)
    state = create_train_state(model, tx, HW, seed=0, ema=False)
    # an identity 1x1 conv: BatchNorm sees the image itself
    params = {"cba": {**state.params["cba"], "conv": {"kernel": jnp.eye(3).reshape(1, 1, 3, 3)}}}
    state = state.replace(params=params, opt_state=tx.init(params))
    image = np.zeros((1, *HW, 3), np.float32)
    image[..., 0] = 2.0  # batch mean 2, variance 0
    image[0, :, :, 1] = 4.0 * (np.indices(HW).sum(0) % 2)  # checkerboard 0 / 4: mean 2, var 4
    image[0, :4, :, 2], image[0, 4:, :, 2] = 1.0, -3.0  # halves 1 / -3: mean -1, var 4
    b = {"image": jnp.asarray(image), "mask": jnp.zeros((1, *HW), jnp.int32)}

    def stats_after_one_step(**momentum):
        step = make_train_step(
            model, tx, LossSpec({"ce": 1.0}), optax.constant_schedule(0.05), HW, 0.0, **momentum
        )
        new, _ = jax.jit(step)(state, b)
        bn = new.batch_stats["cba"]["bn"]
        return np.asarray(bn["mean"]), np.asarray(bn["var"]), new.params

    # from mean 0, var 1: new = m * old + (1 - m) * batch statistic
    mean, var, p_default = stats_after_one_step()  # the models' own 0.99
    np.testing.assert_allclose(mean, [0.02, 0.02, -0.01], rtol=1e-5)
    np.testing.assert_allclose(var, [0.99, 1.03, 1.03], rtol=1e-6)
    mean, var, p_09 = stats_after_one_step(bn_momentum=0.9)
    np.testing.assert_allclose(mean, [0.2, 0.2, -0.1], rtol=1e-5)
    np.testing.assert_allclose(var, [0.9, 1.3, 1.3], rtol=1e-6)
    mean, var, _ = stats_after_one_step(bn_momentum=0.5)
    np.testing.assert_allclose(mean, [1.0, 1.0, -0.5], rtol=1e-5)
    np.testing.assert_allclose(var, [0.5, 2.5, 2.5], rtol=1e-6)
    for p, q in zip(jax.tree.leaves(p_default), jax.tree.leaves(p_09), strict=True):
        np.testing.assert_array_equal(p, q)  # the parameters' update does not depend on it


def test_aux_loss_on_the_coarse_mask_is_added_with_its_weight():
    _, state, step = setup(loss=LossSpec({"ce": 1.0}, aux_weight=0.5))
    _, m = step(state, batch())
    assert float(m["train/loss"]) == pytest.approx(
        float(m["train/loss_ce"]) + 0.5 * float(m["train/loss_aux"]), rel=1e-6
    )
    _, m_off = setup()[2](state, batch())
    assert float(m_off["train/loss"]) == pytest.approx(float(m["train/loss_ce"]), rel=1e-6)


def test_eval_step_counts_valid_pixels_and_uses_ema_params():
    model, state, _ = setup(ema=0.5)
    b = batch(n=2)
    cm = jax.jit(make_eval_step(model, 3, HW, use_ema=False))(state, b)
    assert cm.shape == (3, 3) and int(cm.sum()) == 2 * 64 - 2  # one pixel per image ignored
    rows = np.bincount(np.asarray(b["mask"]).ravel(), minlength=256)[:3]
    np.testing.assert_array_equal(np.asarray(cm).sum(1), rows)
    # EMA params whose head always answers class 2: every pixel lands in column 2
    head = state.ema_params["head"]
    forced = {
        **state.ema_params,
        "head": {"kernel": jnp.zeros_like(head["kernel"]), "bias": jnp.asarray([0.0, 0.0, 1.0])},
    }
    cm_ema = jax.jit(make_eval_step(model, 3, HW, use_ema=True))(
        state.replace(ema_params=forced), b
    )
    np.testing.assert_array_equal(np.asarray(cm_ema)[:, 2], rows)


def test_batches_are_resized_to_the_arch_resolution():
    images = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    masks = jnp.arange(32).reshape(2, 4, 4)
    same = fit_to(images, masks, (4, 4))
    assert same[0] is images and same[1] is masks
    small_images, small_masks = fit_to(images, masks, (2, 2))
    assert small_images.shape == (2, 2, 2, 3)
    # nearest neighbour at pixel centres: rows and columns 1 and 3
    np.testing.assert_array_equal(np.asarray(small_masks[0]), [[5, 7], [13, 15]])
    # antialiased bilinear shrink by 2: a triangle filter twice as wide, renormalised at the
    # border; output (0, 0) sits at input 0.5 -> weights (0.75, 0.75, 0.25) / 1.75 per axis
    w = np.array([0.75, 0.75, 0.25, 0.0]) / 1.75
    expected = np.einsum("i,j,ijc->c", w, w, np.asarray(images[0]))
    np.testing.assert_allclose(np.asarray(small_images[0, 0, 0]), expected, rtol=1e-5)
    assert expected[0] == pytest.approx(3 * 5 * 1.25 / 1.75)


def test_ema_averages_the_batchnorm_statistics_too():
    _, state, step = setup(ema=0.5)
    new, _ = step(state, batch())
    # step 0: decay 0.1 -> 0.1 x the initial statistics + 0.9 x the step's
    expected = jax.tree.map(lambda e, s: 0.1 * e + 0.9 * s, state.batch_stats, new.batch_stats)
    got = jax.tree.leaves(new.ema_batch_stats)
    assert len(got) == 2  # the Tiny model's one BatchNorm: mean and var
    for a, b in zip(got, jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert (
        float(jnp.abs(new.ema_batch_stats["bn"]["mean"] - new.batch_stats["bn"]["mean"]).max()) > 0
    )
    _, off, _ = setup(ema=0.0)
    assert off.ema_batch_stats is None


def test_eval_with_ema_uses_the_averaged_statistics():
    model, state, _ = setup(ema=0.5)
    b = batch(n=2)
    shifted = state.replace(ema_batch_stats=jax.tree.map(lambda x: x + 50.0, state.batch_stats))

    def cm(s, use_ema):
        return np.asarray(jax.jit(make_eval_step(model, 3, HW, use_ema=use_ema))(s, b))

    np.testing.assert_array_equal(cm(shifted, False), cm(state, False))  # raw: raw statistics
    assert not np.array_equal(cm(shifted, True), cm(state, True))  # EMA: the averaged ones
