"""data.metrics against hand-computed cases (confusion matrix, IoU, J, F)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import metrics

LABEL = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 0, 2]])
# rows = ground truth, columns = prediction; the 255 pixel is not counted
CM = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])


def test_confusion_matrix_by_hand():
    np.testing.assert_array_equal(metrics.confusion_matrix(PRED, LABEL, 3), CM)


def test_iou_miou_accuracy_by_hand():
    np.testing.assert_allclose(metrics.iou_per_class(CM), [1 / 3, 2 / 3, 0.0])
    assert metrics.mean_iou(CM) == pytest.approx(1 / 3)
    assert metrics.pixel_accuracy(CM) == pytest.approx(3 / 5)


def test_class_absent_from_both_is_left_out_of_the_mean():
    cm = metrics.confusion_matrix(PRED, LABEL, 4)
    iou = metrics.iou_per_class(cm)
    assert math.isnan(iou[3])
    assert metrics.mean_iou(cm) == pytest.approx(1 / 3)


def test_class_only_predicted_counts_as_zero():
    pred = PRED.copy()
    pred[0, 0] = 3  # a ground-truth 0 predicted as class 3, which is nowhere in the labels
    cm = metrics.confusion_matrix(pred, LABEL, 4)
    iou = metrics.iou_per_class(cm)
    assert iou[3] == 0.0
    # class 0: inter 0 (its one correct pixel is gone), row 2 + column 1 -> IoU 0
    np.testing.assert_allclose(iou, [0.0, 2 / 3, 0.0, 0.0])
    assert metrics.mean_iou(cm) == pytest.approx((2 / 3) / 4)


def test_out_of_range_labels_are_ignored_and_empty_matrix_is_nan():
    cm = metrics.confusion_matrix(np.array([0, 1]), np.array([7, 255]), 3)
    assert cm.sum() == 0
    assert math.isnan(metrics.mean_iou(cm)) and math.isnan(metrics.pixel_accuracy(cm))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="pred: got 2 pixels"):
        metrics.confusion_matrix(np.zeros(2), np.zeros(3), 2)


def test_summarize_names_classes():
    s = metrics.summarize(CM, ("a", "b", "c"))
    assert s["miou"] == pytest.approx(1 / 3) and s["iou/b"] == pytest.approx(2 / 3)
    assert set(s) == {"miou", "pixel_accuracy", "iou/a", "iou/b", "iou/c"}
    assert "iou/0" in metrics.summarize(CM)  # no names: indices


def test_jax_confusion_matches_numpy_under_jit():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 5, (2, 9, 7))
    label[0, :3] = 255
    pred = rng.integers(0, 5, (2, 9, 7))
    fn = jax.jit(metrics.update_confusion, static_argnums=(3,))
    cm = fn(jnp.zeros((5, 5), jnp.int32), jnp.asarray(pred), jnp.asarray(label), 5)
    np.testing.assert_array_equal(np.asarray(cm), metrics.confusion_matrix(pred, label, 5))
    assert cm.dtype == jnp.int32 and int(cm.sum()) == 2 * 9 * 7 - 21


def _square(top: int, left: int, size: int = 4, shape: tuple[int, int] = (10, 10)):
    m = np.zeros(shape, np.uint8)
    m[top : top + size, left : left + size] = 1
    return m


def test_boundary_is_the_inner_perimeter():
    b = metrics.boundary(_square(2, 2))
    assert b.sum() == 12 and not b[3:5, 3:5].any()
    full = np.ones((5, 5))
    assert metrics.boundary(full).sum() == 0  # image edges are not boundaries


def test_j_and_f_by_hand():
    gt = _square(2, 2)
    assert metrics.jaccard(gt, gt) == 1.0 and metrics.boundary_f(gt, gt) == 1.0
    # shifted right by 1: intersection 12, union 20; every boundary pixel within 1 px
    one = _square(2, 3)
    assert metrics.jaccard(one, gt) == pytest.approx(0.6)
    assert metrics.boundary_f(one, gt, tolerance=1) == pytest.approx(1.0)
    # shifted by 3: intersection 4 of union 28; 6 of 12 boundary pixels matched each way
    three = _square(2, 5)
    assert metrics.jaccard(three, gt) == pytest.approx(4 / 28)
    assert metrics.boundary_f(three, gt, tolerance=1) == pytest.approx(0.5)
    # the default 0.008 of a 10x10 diagonal rounds up to 1 pixel: same answer
    assert metrics.boundary_f(three, gt) == pytest.approx(0.5)
    assert metrics.boundary_f(three, gt, tolerance=3) == pytest.approx(1.0)


def test_j_and_f_empty_cases():
    empty, gt = np.zeros((10, 10)), _square(2, 2)
    assert metrics.jaccard(empty, empty) == 1.0 and metrics.boundary_f(empty, empty) == 1.0
    assert metrics.jaccard(empty, gt) == 0.0 and metrics.boundary_f(empty, gt) == 0.0
    assert metrics.jaccard(gt, empty) == 0.0 and metrics.boundary_f(gt, empty) == 0.0


def test_tolerance_pixels():
    assert metrics.tolerance_pixels((10, 10), 0.008) == 1
    assert metrics.tolerance_pixels((480, 854), 0.008) == 8
    assert metrics.tolerance_pixels((480, 854), 2) == 2


def test_ignore_pixels_and_padding_frames():
    gt = _square(2, 2).astype(np.int64)
    gt[:, 8:] = 255
    pred = _square(2, 2)
    pred[:, 8:] = 1  # foreground predicted where the label is ignored: not counted
    assert metrics.jaccard(pred, gt) == 1.0
    assert metrics.boundary_f(pred, gt) == 1.0
    preds = np.stack([pred, _square(2, 5), np.ones((10, 10))])
    gts = np.stack([gt, _square(2, 2), np.full((10, 10), 255)])  # last frame: padding
    out = metrics.j_and_f(preds, gts, tolerance=1)
    assert out["j_mean"] == pytest.approx((1 + 4 / 28) / 2)
    assert out["f_mean"] == pytest.approx((1 + 0.5) / 2)
    assert out["jf_mean"] == pytest.approx((out["j_mean"] + out["f_mean"]) / 2)


def test_j_and_f_errors_and_all_padding():
    with pytest.raises(ValueError, match="preds: got shape"):
        metrics.j_and_f(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))
    out = metrics.j_and_f(np.zeros((1, 4, 4)), np.full((1, 4, 4), 255))
    assert all(math.isnan(v) for v in out.values())
