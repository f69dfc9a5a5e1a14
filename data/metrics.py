"""Segmentation metrics: confusion-matrix mIoU / pixel accuracy, and J / F for binary masks.

**Confusion matrix** `cm[g, p]` counts pixels of ground-truth class g predicted as p; pixels
whose label is `ignore_index` (255) or outside 0..C-1 are not counted. From it:

- IoU of class c = cm[c, c] / (row c + column c - cm[c, c]);
- **mIoU** = mean IoU over the classes *present* in the ground truth or the prediction:
  a class absent from both has IoU 0/0, which is undefined (NaN in `iou_per_class`) and left
  out of the mean, rather than counted as 1 (which would reward datasets with unused classes)
  or 0 (which would punish them). A class in the prediction only has IoU 0 and does count.
- pixel accuracy = trace / total.

`confusion_matrix_jax` is jittable for use inside an eval step; it returns one batch's counts
as int32 (exact up to 2^31 pixels per cell): sum batches on the host in int64 (`np.asarray`
then `+=`) for large evaluation sets.

**J and F** (seed 000 Table 2, the DAVIS measures) compare a binary foreground (label != 0)
frame by frame and average over frames:

- J (region similarity) = IoU of the foreground; 1 when both masks are empty.
- F (contour accuracy) = F-measure of boundary precision and recall, a boundary pixel
  counting as matched when the other mask's boundary lies within `tolerance` (a fraction of
  the image diagonal, rounded up, DAVIS uses 0.008; or pixels if >= 1). Boundary pixels are
  foreground pixels with a 4-neighbour in the background (image borders are not boundaries).
  Both boundaries empty -> 1; exactly one empty -> 0.
- Pixels labelled `ignore_index` are removed from both masks (J) and set to background in
  both (F); a frame whose ground truth is all `ignore_index` (batch padding) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from data.labels import IGNORE_INDEX


def confusion_matrix(
    pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """(C, C) int64 counts, rows = ground truth, columns = prediction."""
    pred, label = np.asarray(pred).ravel(), np.asarray(label).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"pred: got {pred.size} pixels; allowed: as many as label ({label.size})")
    valid = (label != ignore_index) & (label >= 0) & (label < num_classes)
    index = label[valid].astype(np.int64) * num_classes + pred[valid].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrix_jax(
    pred: jax.Array, label: jax.Array, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> jax.Array:
    """Jittable (C, C) int32 counts of one batch (`num_classes` static)."""
    pred, label = pred.reshape(-1).astype(jnp.int32), label.reshape(-1).astype(jnp.int32)
    valid = (label != ignore_index) & (label >= 0) & (label < num_classes)
    index = jnp.where(valid, label * num_classes + pred, 0)
    counts = jnp.bincount(index, weights=valid.astype(jnp.int32), length=num_classes * num_classes)
    return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def update_confusion(
    cm: jax.Array,
    pred: jax.Array,
    label: jax.Array,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """cm + this batch's counts (jittable)."""
    return cm + confusion_matrix_jax(pred, label, num_classes, ignore_index)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """(C,) float64 IoU; NaN for classes absent from both ground truth and prediction."""
    cm = np.asarray(cm, np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over present classes (module docstring); NaN if no pixel was counted."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else math.nan


def pixel_accuracy(cm: np.ndarray) -> float:
    """Correctly labelled pixels / counted pixels (trace / total); NaN if none were counted."""
    cm = np.asarray(cm, np.float64)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else math.nan


def summarize(cm: np.ndarray, class_names: Sequence[str] = ()) -> dict[str, float]:
    """{"miou", "pixel_accuracy", "iou/<class>"...} (class names or indices)."""
    iou = iou_per_class(cm)
    names = list(class_names) if len(class_names) == len(iou) else [str(i) for i in range(len(iou))]
    out = {"miou": mean_iou(cm), "pixel_accuracy": pixel_accuracy(cm)}
    out.update({f"iou/{n}": float(v) for n, v in zip(names, iou, strict=False)})
    return out


# --- J and F for binary masks --------------------------------------------------------------


def jaccard(pred: np.ndarray, gt: np.ndarray, ignore_index: int = IGNORE_INDEX) -> float:
    """Foreground IoU of one frame (J); 1.0 when both are empty."""
    valid = gt != ignore_index
    p, g = (pred != 0) & valid, (gt != 0) & valid
    union = np.count_nonzero(p | g)
    return 1.0 if union == 0 else np.count_nonzero(p & g) / union


def boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour in the background (image edges excluded)."""
    m = np.asarray(mask, bool)
    padded = np.pad(m, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return m & ~inner


def tolerance_pixels(shape: tuple[int, int], tolerance: float) -> float:
    """A tolerance < 1 is a fraction of the diagonal (rounded up); >= 1 is pixels."""
    return tolerance if tolerance >= 1 else math.ceil(tolerance * math.hypot(*shape))


def boundary_f(
    pred: np.ndarray, gt: np.ndarray, tolerance: float = 0.008, ignore_index: int = IGNORE_INDEX
) -> float:
    """Boundary F-measure of one frame (F)."""
    valid = gt != ignore_index
    pb, gb = boundary((pred != 0) & valid), boundary((gt != 0) & valid)
    n_p, n_g = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    radius = tolerance_pixels(gt.shape, tolerance)
    # distance from every pixel to the nearest boundary pixel of the other mask
    precision = np.count_nonzero(ndimage.distance_transform_edt(~gb)[pb] <= radius) / n_p
    recall = np.count_nonzero(ndimage.distance_transform_edt(~pb)[gb] <= radius) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def j_and_f(
    preds: np.ndarray, gts: np.ndarray, tolerance: float = 0.008, ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """J-mean, F-mean and their average over frames of (..., H, W) binary masks."""
    preds, gts = np.asarray(preds), np.asarray(gts)
    if preds.shape != gts.shape:
        raise ValueError(f"preds: got shape {preds.shape}; allowed: the shape of gts {gts.shape}")
    h, w = gts.shape[-2:]
    js, fs = [], []
    for p, g in zip(preds.reshape(-1, h, w), gts.reshape(-1, h, w), strict=False):
        if np.all(g == ignore_index):
            continue
        js.append(jaccard(p, g, ignore_index))
        fs.append(boundary_f(p, g, tolerance, ignore_index))
    if not js:
        return {"j_mean": math.nan, "f_mean": math.nan, "jf_mean": math.nan}
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"j_mean": j, "f_mean": f, "jf_mean": (j + f) / 2}
