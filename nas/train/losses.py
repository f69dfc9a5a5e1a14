"""Segmentation losses, and their weighted sum as an experiment config names it.

Every loss takes logits `(..., C)` and integer labels `(...)` where `ignore_index` (255) marks
pixels that count nowhere, and returns a float32 scalar. Conventions (tests pin them):

- `cross_entropy`: softmax cross-entropy averaged over valid pixels; with class weights each
  pixel counts with its label's weight and the sum is divided by the summed weights (a
  weighted mean, so the loss scale does not depend on the weights' scale).
- `binary_cross_entropy`: one-vs-all sigmoid cross-entropy against the one-hot label, averaged
  over valid pixels and classes (pixel weights as for `cross_entropy`).
- `lovasz_softmax`: the Lovasz extension of the Jaccard loss on softmax probabilities
  (Berman et al. 2018), over the whole batch as one set of pixels.
- `soft_jaccard` (seed 000 trains with a Jaccard loss) and `dice`: 1 - soft IoU / soft Dice
  per class, pixels summed over the whole batch.

The three region losses average over the classes *present* in the batch's labels (a class
with no pixel has no defined IoU; this is the "present" mode of the Lovasz paper), weighted
by the class weights when given. A batch with no valid pixel gives 0 for every loss.

`LossSpec` is the parsed `config.train.loss` section: a weight per loss name (0 = unused;
seed 002 uses ce 4 : lovasz 1), optional class weights and the weight of an auxiliary loss on
the decoder's coarse mask (`aux["coarse_logits"]`, compared with the mask downsampled by
nearest neighbour to its size).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import optax

from data.labels import IGNORE_INDEX
from nas.errors import UserError, check_number


def _flatten(
    logits: jax.Array, labels: jax.Array, ignore_index: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(N, C) float32 logits, (N,) labels clipped into range, (N,) float32 validity."""
    c = logits.shape[-1]
    logits = logits.reshape(-1, c).astype(jnp.float32)
    labels = labels.reshape(-1).astype(jnp.int32)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < c)
    return logits, jnp.where(valid, labels, 0), valid.astype(jnp.float32)


def _pixel_weights(
    labels: jax.Array, valid: jax.Array, class_weights: jax.Array | None
) -> jax.Array:
    return valid if class_weights is None else valid * jnp.asarray(class_weights)[labels]


def _weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    total = weights.sum()
    return jnp.where(total > 0, (values * weights).sum() / jnp.maximum(total, 1e-12), 0.0)


def cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """Softmax cross-entropy, (class-weighted) mean over valid pixels."""
    logits, labels, valid = _flatten(logits, labels, ignore_index)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return _weighted_mean(ce, _pixel_weights(labels, valid, class_weights))


def binary_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """One-vs-all sigmoid cross-entropy vs the one-hot label, mean over pixels, classes."""
    logits, labels, valid = _flatten(logits, labels, ignore_index)
    onehot = jax.nn.one_hot(labels, logits.shape[-1])
    bce = optax.sigmoid_binary_cross_entropy(logits, onehot).mean(-1)
    return _weighted_mean(bce, _pixel_weights(labels, valid, class_weights))


def _class_mean(
    per_class: jax.Array, present: jax.Array, class_weights: jax.Array | None
) -> jax.Array:
    w = present.astype(jnp.float32)
    if class_weights is not None:
        w = w * jnp.asarray(class_weights, jnp.float32)
    return _weighted_mean(per_class, w)


def _soft_counts(
    logits: jax.Array, labels: jax.Array, ignore_index: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per class: soft intersection, soft prediction mass, label count (valid pixels only)."""
    logits, labels, valid = _flatten(logits, labels, ignore_index)
    probs = jax.nn.softmax(logits, -1) * valid[:, None]
    onehot = jax.nn.one_hot(labels, logits.shape[-1]) * valid[:, None]
    return (probs * onehot).sum(0), probs.sum(0), onehot.sum(0)


def soft_jaccard(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """1 - soft IoU per class (pixels summed over the batch), mean over present classes."""
    inter, pred, true = _soft_counts(logits, labels, ignore_index)
    present = true > 0
    # union >= label count >= 1 for present classes; absent ones are masked out of the mean.
    iou = inter / jnp.where(present, pred + true - inter, 1.0)
    return _class_mean(1.0 - iou, present, class_weights)


def dice(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """1 - soft Dice per class (pixels summed over the batch), mean over present classes."""
    inter, pred, true = _soft_counts(logits, labels, ignore_index)
    present = true > 0
    score = 2.0 * inter / jnp.where(present, pred + true, 1.0)
    return _class_mean(1.0 - score, present, class_weights)


def _lovasz_grad(fg_sorted: jax.Array) -> jax.Array:
    """Gradient of the Lovasz extension at errors sorted in decreasing order."""
    total = fg_sorted.sum()
    intersection = total - jnp.cumsum(fg_sorted)
    union = total + jnp.cumsum(1.0 - fg_sorted)  # >= 1 everywhere
    jaccard = 1.0 - intersection / union
    return jnp.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: jax.Array | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> jax.Array:
    """Lovasz-softmax loss over the batch as one pixel set, mean over present classes."""
    logits, labels, valid = _flatten(logits, labels, ignore_index)
    probs = jax.nn.softmax(logits, -1)
    is_valid = valid > 0

    def one_class(c: jax.Array, p: jax.Array) -> tuple[jax.Array, jax.Array]:
        fg = ((labels == c) & is_valid).astype(jnp.float32)
        # Ignored pixels get error -1 so they sort after every valid pixel: the cumulative
        # sums that give each valid pixel its weight then never include them.
        errors = jnp.where(is_valid, jnp.abs(fg - p), -1.0)
        order = jnp.argsort(-errors)
        errors_sorted, fg_sorted = errors[order], fg[order]
        loss = jnp.dot(jnp.maximum(errors_sorted, 0.0), _lovasz_grad(fg_sorted))
        return loss, fg.sum() > 0

    classes = jnp.arange(logits.shape[-1])
    per_class, present = jax.vmap(one_class, in_axes=(0, 1))(classes, probs)
    return _class_mean(per_class, present, class_weights)


LossFn = Callable[..., jax.Array]
# config name -> loss; the one table of losses a config may name.
LOSSES: dict[str, LossFn] = {
    "ce": cross_entropy,
    "lovasz": lovasz_softmax,
    "jaccard": soft_jaccard,
    "dice": dice,
    "bce": binary_cross_entropy,
}


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A weighted sum of `LOSSES` (zero weights dropped), class weights, auxiliary weight."""

    weights: Mapping[str, float]
    class_weights: tuple[float, ...] | None = None
    aux_weight: float = 0.0
    ignore_index: int = IGNORE_INDEX

    def __call__(
        self, logits: jax.Array, labels: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """(total, {name: unweighted value}) for the losses with a non-zero weight."""
        cw = None if self.class_weights is None else jnp.asarray(self.class_weights, jnp.float32)
        parts = {
            name: LOSSES[name](logits, labels, class_weights=cw, ignore_index=self.ignore_index)
            for name in self.weights
        }
        total = sum(self.weights[name] * value for name, value in parts.items())
        return jnp.asarray(total, jnp.float32), parts


def downsample_mask(mask: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """Nearest-neighbour resize of (N, H, W) labels (ignore stays ignore)."""
    if tuple(mask.shape[1:3]) == tuple(hw):
        return mask
    return jax.image.resize(mask, (mask.shape[0], *hw), "nearest")


def loss_spec(
    cfg: ml_collections.ConfigDict, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> LossSpec:
    """Parses `config.train.loss`: one weight per name in LOSSES, `class_weights` (empty =
    none, else one per class) and `aux_weight`; UserError naming the field otherwise."""
    known = set(LOSSES) | {"class_weights", "aux_weight"}
    unknown = sorted(set(cfg.keys()) - known)
    if unknown:
        raise UserError(f"train.loss.{unknown[0]}: unknown; allowed: {', '.join(sorted(known))}")
    weights = {}
    for name in LOSSES:
        w = check_number(
            f"train.loss.{name}", cfg.get(name, 0.0), lambda v: v >= 0, "a weight >= 0"
        )
        if w > 0:
            weights[name] = float(w)
    if not weights:
        raise UserError(
            f"train.loss: all weights are 0; allowed: at least one of {', '.join(LOSSES)} > 0"
        )
    cw = tuple(cfg.get("class_weights", ()) or ())
    if cw and (len(cw) != num_classes or any(not isinstance(v, (int, float)) or v < 0 for v in cw)):
        raise UserError(
            f"train.loss.class_weights: got {list(cw)!r}; allowed: empty or "
            f"{num_classes} weights >= 0 (one per class)"
        )
    aux = check_number(
        "train.loss.aux_weight", cfg.get("aux_weight", 0.0), lambda v: v >= 0, "a weight >= 0"
    )
    return LossSpec(weights, tuple(float(v) for v in cw) if cw else None, float(aux), ignore_index)
