"""models.vim against labels written out by hand: which classes VIM keeps (counts, ties, absent
classes), its labels when every class present is kept and when one is dropped, the case where
argmax does not commute with interpolation, and its errors."""

import jax.numpy as jnp
import numpy as np
import pytest

from models.vim import check_k, full_labels, kept_classes, vim_labels

# 2x2 -> 4x4 half-pixel bilinear: per axis, output d weighs source 0 by r0 = 1, .75, .25, 0 and
# source 1 by 1 - r0 (tests/models/test_layers.py checks these weights).
# Low-resolution winners [[0, 1], [1, 2]] (class 3 absent), each with logit 4, the others 0,
# except class 1 = 1 at pixel (1, 1): counts 0:1, 1:2, 2:1, 3:0.
_LOW = np.zeros((1, 2, 2, 4), np.float32)
_LOW[0, 0, 0, 0] = _LOW[0, 0, 1, 1] = _LOW[0, 1, 0, 1] = _LOW[0, 1, 1, 2] = 4.0
_LOW[0, 1, 1, 1] = 1.0
# Class maps at output (i, j), r = r0[i], c = r0[j]: class0 = 4 r c, class2 = 4 (1-r)(1-c),
# class1 = 4 (r (1-c) + (1-r) c) + (1-r)(1-c). E.g. (2, 2): 0.25, 2.0625, 2.25 -> 2;
# (1, 1): 2.25, 1.5625, 0.25 -> 0; (2, 1): 0.75, 2.6875, 0.75 -> 1.
_FULL = [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]]
# K = 2 keeps classes 1 (count 2) and 0 (count 1; it beats class 2's equal count by its lower
# id). Class 2's pixels take the better of 0 and 1: (2, 2) 0.25 vs 2.0625, (2, 3) 0 vs 1.75,
# (3, 2) 0 vs 1.75, (3, 3) 0 vs 1 -> class 1 everywhere.
_K2 = [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]


def test_kept_classes_by_count_then_lower_id_absent_last():
    low = jnp.asarray(_LOW)
    assert np.asarray(kept_classes(low, 4)).tolist() == [[1, 0, 2, 3]]
    assert np.asarray(kept_classes(low, 2)).tolist() == [[1, 0]]
    assert np.asarray(kept_classes(low, 1)).tolist() == [[1]]
    assert kept_classes(low, 3).dtype == jnp.int32


def test_full_labels_by_hand():
    out = full_labels(jnp.asarray(_LOW), (4, 4))
    assert out.shape == (1, 4, 4) and out.dtype == jnp.int32
    assert np.asarray(out[0]).tolist() == _FULL


@pytest.mark.parametrize("k", [3, 4])
def test_vim_keeps_every_present_class(k):
    out = vim_labels(jnp.asarray(_LOW), (4, 4), k)
    assert out.shape == (1, 4, 4) and out.dtype == jnp.int32
    assert np.asarray(out[0]).tolist() == _FULL


def test_vim_more_classes_than_k_drops_the_least_frequent():
    assert np.asarray(vim_labels(jnp.asarray(_LOW), (4, 4), 2)[0]).tolist() == _K2
    assert np.asarray(vim_labels(jnp.asarray(_LOW), (4, 4), 1)[0]).tolist() == [[1] * 4] * 4


def test_vim_per_image_in_a_batch():
    # Image 2 = image 1 mirrored left-right: same counts and kept classes, labels mirrored.
    low = jnp.asarray(np.concatenate([_LOW, _LOW[:, :, ::-1]]))
    out = np.asarray(vim_labels(low, (4, 4), 2))
    assert out.shape == (2, 4, 4)
    assert out[0].tolist() == _K2
    assert out[1].tolist() == [row[::-1] for row in _K2]


def test_class_absent_at_low_resolution_can_win_the_interpolation():
    # 1x2 -> 1x4: logits (4, 0, 3.5) and (0, 4, 3.5); class 2 wins neither pixel but, with
    # weights .75/.25 on the nearer pixel, wins output columns 1 (3, 1, 3.5) and 2 (1, 3, 3.5).
    low = jnp.asarray([[[[4.0, 0.0, 3.5], [0.0, 4.0, 3.5]]]])
    assert np.asarray(full_labels(low, (1, 4))).tolist() == [[[0, 2, 2, 1]]]
    assert np.asarray(vim_labels(low, (1, 4), 3)).tolist() == [[[0, 2, 2, 1]]]
    # K = 2 keeps the two classes present: class 2 is no candidate (the documented exception).
    assert np.asarray(vim_labels(low, (1, 4), 2)).tolist() == [[[0, 0, 1, 1]]]


def test_vim_equals_full_when_every_present_class_is_kept():
    # Winner-take-all logits (a > 0 for the low-res winner, 0 elsewhere): every output pixel's
    # argmax is a class present at low resolution, so K >= classes present loses nothing.
    rng = np.random.default_rng(0)
    labels = rng.choice([2, 5, 11, 17, 19], size=(2, 6, 5))
    low = np.zeros((2, 6, 5, 20), np.float32)
    np.put_along_axis(low, labels[..., None], rng.uniform(1, 2, (2, 6, 5, 1)), axis=-1)
    full = np.asarray(full_labels(jnp.asarray(low), (24, 20)))
    assert set(np.unique(full)) == {2, 5, 11, 17, 19}
    for k in (5, 8, 20):
        np.testing.assert_array_equal(np.asarray(vim_labels(jnp.asarray(low), (24, 20), k)), full)


@pytest.mark.parametrize("k", [0, 5, -1, True, 2.0, "3"])
def test_bad_k(k):
    with pytest.raises(ValueError) as e:
        vim_labels(jnp.asarray(_LOW), (4, 4), k)
    assert str(e.value) == f"k: got {k!r}; allowed: an integer in [1, 4]"


def test_check_k_returns_k_and_bad_logits_shape():
    assert check_k(16, 150) == 16
    with pytest.raises(ValueError, match=r"^low_logits: got shape \(2, 2, 4\); allowed: "):
        vim_labels(jnp.asarray(_LOW[0]), (4, 4), 2)
    with pytest.raises(ValueError, match="shrinks"):
        vim_labels(jnp.asarray(_LOW), (1, 1), 2)
