"""Losses against hand-computed values: ignore index, class weights, Lovasz, Jaccard, Dice.

The running example: 3 pixels, 2 classes, softmax probabilities of class 1 = (0.9, 0.4, 0.2)
(logits = log p, so softmax gives p back), labels (1, 0, 1).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from nas.errors import UserError
from nas.train.losses import (
    LOSSES,
    LossSpec,
    binary_cross_entropy,
    cross_entropy,
    dice,
    downsample_mask,
    loss_spec,
    lovasz_softmax,
    soft_jaccard,
)

P1 = np.array([0.9, 0.4, 0.2])
LOGITS = jnp.log(jnp.asarray(np.stack([1 - P1, P1], -1), jnp.float32))  # (3, 2)
LABELS = jnp.asarray([1, 0, 1])


def with_ignored(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Adds a 4th pixel labelled 255 with a confident wrong prediction: must change nothing."""
    return (
        jnp.concatenate([logits, jnp.asarray([[9.0, -9.0]])]),
        jnp.concatenate([labels, jnp.asarray([255])]),
    )


def test_cross_entropy_ignores_255_and_averages_valid_pixels():
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.2)) / 3
    assert float(cross_entropy(LOGITS, LABELS)) == pytest.approx(expected, rel=1e-6)
    assert float(cross_entropy(*with_ignored(LOGITS, LABELS))) == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_class_weights_give_a_weighted_mean():
    w = jnp.asarray([1.0, 3.0])
    expected = (3 * -math.log(0.9) + 1 * -math.log(0.6) + 3 * -math.log(0.2)) / 7
    got = cross_entropy(*with_ignored(LOGITS, LABELS), class_weights=w)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_every_loss_is_zero_when_every_pixel_is_ignored():
    labels = jnp.full((3,), 255)
    for name, fn in LOSSES.items():
        value = fn(LOGITS, labels)
        assert float(value) == 0.0, name
        grad = jax.grad(lambda x: fn(x, labels))(LOGITS)  # noqa: B023 (called here)
        assert np.all(np.isfinite(grad)), name


def test_binary_cross_entropy_one_vs_all():
    x = np.asarray(LOGITS)

    def sig(v):
        return 1 / (1 + np.exp(-v))

    onehot = np.array([[0, 1], [1, 0], [0, 1]])
    per_pixel = -(onehot * np.log(sig(x)) + (1 - onehot) * np.log(1 - sig(x))).mean(-1)
    got = binary_cross_entropy(*with_ignored(LOGITS, LABELS))
    assert float(got) == pytest.approx(per_pixel.mean(), rel=1e-5)


def test_lovasz_softmax_hand_computed():
    # class 1: errors (0.1, 0.4, 0.8) -> sorted (0.8 fg, 0.4 bg, 0.1 fg); Jaccard steps
    # (1/2, 2/3, 1) -> gradient (1/2, 1/6, 1/3); loss 0.4 + 0.4/6 + 0.1/3 = 0.5.
    # class 0: errors (0.1, 0.4, 0.8), fg (0, 1, 0) -> sorted fg (0, 1, 0); Jaccard
    # (1/2, 1, 1) -> gradient (1/2, 1/2, 0); loss 0.4 + 0.2 = 0.6. Mean: 0.55.
    assert float(lovasz_softmax(LOGITS, LABELS)) == pytest.approx(0.55, abs=1e-6)
    assert float(lovasz_softmax(*with_ignored(LOGITS, LABELS))) == pytest.approx(0.55, abs=1e-6)
    weighted = lovasz_softmax(LOGITS, LABELS, class_weights=jnp.asarray([1.0, 3.0]))
    assert float(weighted) == pytest.approx((0.6 + 3 * 0.5) / 4, abs=1e-6)


def test_lovasz_averages_present_classes_only():
    labels = jnp.asarray([1, 1, 1])  # class 0 absent: only class 1's term counts
    # class 1: errors (0.1, 0.6, 0.8) all fg -> Jaccard (1/3, 2/3, 1), gradient 1/3 each
    assert float(lovasz_softmax(LOGITS, labels)) == pytest.approx(1.5 / 3, abs=1e-6)


def test_lovasz_at_hard_predictions_equals_one_minus_iou():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (2, 5, 7))
    pred = rng.integers(0, 3, (2, 5, 7))
    logits = jnp.asarray(np.eye(3)[pred] * 60.0 - 30.0, jnp.float32)  # one-hot softmax
    ious = [
        ((labels == c) & (pred == c)).sum() / ((labels == c) | (pred == c)).sum() for c in range(3)
    ]
    assert float(lovasz_softmax(logits, jnp.asarray(labels))) == pytest.approx(
        1 - np.mean(ious), abs=1e-5
    )


def test_soft_jaccard_and_dice_hand_computed():
    # class 1: intersection 0.9 + 0.2 = 1.1, prediction mass 1.5, labels 2
    # class 0: intersection 0.6, prediction mass 1.5, labels 1
    iou = np.array([0.6 / (1.5 + 1 - 0.6), 1.1 / (1.5 + 2 - 1.1)])
    dsc = np.array([1.2 / 2.5, 2.2 / 3.5])
    args = with_ignored(LOGITS, LABELS)
    assert float(soft_jaccard(*args)) == pytest.approx(1 - iou.mean(), abs=1e-6)
    assert float(dice(*args)) == pytest.approx(1 - dsc.mean(), abs=1e-6)
    w = jnp.asarray([1.0, 3.0])
    assert float(soft_jaccard(*args, class_weights=w)) == pytest.approx(
        1 - (iou[0] + 3 * iou[1]) / 4, abs=1e-6
    )
    assert float(dice(*args, class_weights=w)) == pytest.approx(
        1 - (dsc[0] + 3 * dsc[1]) / 4, abs=1e-6
    )


def test_losses_take_image_shaped_batches():
    logits = jnp.broadcast_to(LOGITS[None, :, None, :], (2, 3, 1, 2))  # (N, H, W, C)
    labels = jnp.broadcast_to(LABELS[None, :, None], (2, 3, 1))
    assert float(lovasz_softmax(logits, labels)) == pytest.approx(0.55, abs=1e-6)
    # the running example's mean over its 3 pixels, each pixel counted twice
    expected = -(math.log(0.9) + math.log(0.6) + math.log(0.2)) / 3
    assert float(cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)


def test_loss_spec_weighted_sum_seed002_ratio():
    cfg = ml_collections.ConfigDict(
        dict(ce=4.0, lovasz=1.0, jaccard=0.0, dice=0.0, bce=0.0, class_weights=(), aux_weight=0.4)
    )
    spec = loss_spec(cfg, num_classes=2)
    assert spec == LossSpec({"ce": 4.0, "lovasz": 1.0}, None, 0.4)
    total, parts = spec(LOGITS, LABELS)
    assert set(parts) == {"ce", "lovasz"}
    ce = -(math.log(0.9) + math.log(0.6) + math.log(0.2)) / 3  # 0.8389...
    assert float(parts["ce"]) == pytest.approx(ce, rel=1e-6)
    assert float(parts["lovasz"]) == pytest.approx(0.55, abs=1e-6)
    assert float(total) == pytest.approx(4 * ce + 0.55, rel=1e-6)


def test_loss_spec_class_weights_reach_the_losses():
    cfg = ml_collections.ConfigDict(dict(ce=1.0, class_weights=(1.0, 3.0)))
    total, _ = loss_spec(cfg, num_classes=2)(LOGITS, LABELS)
    # weights 3, 1, 3 on the pixels of class 1, 0, 1 (test_cross_entropy_class_weights_...)
    expected = (3 * -math.log(0.9) + 1 * -math.log(0.6) + 3 * -math.log(0.2)) / 7
    assert float(total) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(ce=1.0, focal=1.0), "train.loss.focal: unknown"),
        (dict(ce=-1.0), r"train.loss.ce: got -1.0; allowed: a weight >= 0"),
        (dict(ce="1"), r"train.loss.ce: got '1'"),
        (dict(ce=0.0), "all weights are 0"),
        (dict(ce=1.0, class_weights=(1.0,)), r"class_weights: got \[1.0\]; allowed: empty or 2"),
        (dict(ce=1.0, class_weights=(1.0, -2.0)), "class_weights"),
        (dict(ce=1.0, aux_weight=-0.1), "train.loss.aux_weight: got -0.1"),
    ],
)
def test_loss_spec_errors_name_the_field(fields, match):
    with pytest.raises(UserError, match=match):
        loss_spec(ml_collections.ConfigDict(fields), num_classes=2)


def test_downsample_mask_is_nearest_and_keeps_ignore():
    mask = jnp.arange(16).reshape(1, 4, 4).at[0, 1, 1].set(255)
    small = downsample_mask(mask, (2, 2))
    # nearest neighbour samples pixel centres (i + 0.5) * 2 -> rows/cols 1 and 3
    np.testing.assert_array_equal(np.asarray(small[0]), [[255, 7], [13, 15]])
    assert downsample_mask(mask, (4, 4)) is mask
