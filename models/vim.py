"""The Valid Interpolate Module (VIM): upsample only the classes present, then argmax.

From "PP-MobileSeg: Explore the Fast and Accurate Semantic Segmentation Model on Mobile
Devices". The final bilinear upsample + argmax over all C class maps dominates an edge
model's latency when C is large (150 on ADE20K); few classes appear in any one image, so
`vim_labels` upsamples only those:

1. argmax over the classes of the low-resolution logits;
2. per class, the number of low-resolution pixels where it wins (0: absent);
3. the K most frequent classes (`jax.lax.top_k`); K is a fixed bound so that every shape is
   static and the graph exports to TFLite builtins (ARG_MAX, ONE_HOT, SUM, TOPK_V2,
   GATHER_ND, RESIZE_BILINEAR; checked by tests/nas/export/test_vim_export.py);
4. their K channels gathered, upsampled with `models.layers.upsample_bilinear` (the resize the
   decoders end with), argmax over the K, mapped back to class ids.

**Ties and absent classes** are ordered deterministically: classes are ranked by count, then
by the lower class id, via one integer score `count * C + (C - 1 - id)`, unique per class, so
no backend's tie rule matters.

**More than K classes present**: the least frequent at low resolution are dropped (on equal
counts the higher class id); their pixels take the best of the kept classes.
**Fewer than K present**: the free slots go to absent classes (lowest ids first). They are
extra candidates only: nothing present is ever dropped to make room for them.

Bilinear resizing is linear and works channel by channel, so with K = C `vim_labels` equals
`full_labels` (up to ties between exactly equal logits). With K >= the classes present but
K < C it nearly always does; the exception is a pixel where a class that wins at none of its
low-resolution neighbours wins their interpolation (possible, since argmax does not commute
with averaging), and that class was not among the K candidates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from models.layers import upsample_bilinear

DEFAULT_K = 16  # the bound the benchmarks and tables use


def check_k(k: object, num_classes: int) -> int:
    """`k` if it is an integer in [1, num_classes], else a ValueError naming `k`."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= num_classes:
        raise ValueError(f"k: got {k!r}; allowed: an integer in [1, {num_classes}]")
    return k


def _check_logits(low_logits: jax.Array) -> None:
    if low_logits.ndim != 4:
        raise ValueError(
            f"low_logits: got shape {tuple(low_logits.shape)}; allowed: (N, h, w, classes)"
        )


def full_labels(low_logits: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """(N, H, W) int32: every class map upsampled to `out_hw`, then argmax (the reference)."""
    _check_logits(low_logits)
    return jnp.argmax(upsample_bilinear(low_logits, out_hw), axis=-1).astype(jnp.int32)


def kept_classes(low_logits: jax.Array, k: int) -> jax.Array:
    """(N, K) int32: the K classes VIM keeps per image, most frequent first (module docstring)."""
    _check_logits(low_logits)
    c = int(low_logits.shape[-1])
    check_k(k, c)
    low = jnp.argmax(low_logits, axis=-1).astype(jnp.int32)  # (N, h, w)
    ids = jnp.arange(c, dtype=jnp.int32)
    counts = jnp.sum((low[..., None] == ids).astype(jnp.int32), axis=(1, 2))  # (N, C)
    # Integer scores, unique per class: exact (h * w * C is far below 2**31) and no tie left
    # for TOPK_V2 or XLA to break their own way.
    score = counts * c + (c - 1 - ids)
    return jax.lax.top_k(score, k)[1].astype(jnp.int32)


def _gather_last(x: jax.Array, idx: jax.Array) -> jax.Array:
    """`x[..., idx]` for integer `idx` of any shape: shape x.shape[:-1] + idx.shape."""
    # lax.gather itself: the indices come from top_k / argmax, so always in range, and
    # PROMISE_IN_BOUNDS spares the negative-index and bounds-check selects (LESS + SELECT over
    # every output pixel once exported) that jnp indexing would add.
    lead = x.ndim - 1
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(range(lead)), collapsed_slice_dims=(lead,), start_index_map=(lead,)
    )
    # offset_dims first: x's leading dims lead the output, the index dims follow.
    return jax.lax.gather(
        x,
        idx[..., None],
        dims,
        (*x.shape[:-1], 1),
        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def vim_labels(low_logits: jax.Array, out_hw: tuple[int, int], k: int) -> jax.Array:
    """(N, H, W) int32 labels at `out_hw` from (N, h, w, C) logits, upsampling K <= C maps."""
    keep = kept_classes(low_logits, k)  # validates
    out = []
    # One static gather per image (batch 1 when exported): plain GATHER ops, no batch dims.
    for n in range(low_logits.shape[0]):
        sub = _gather_last(low_logits[n], keep[n])  # (h, w, K)
        best = jnp.argmax(upsample_bilinear(sub[None], out_hw)[0], axis=-1)  # (H, W) in [0, K)
        out.append(_gather_last(keep[n], best))
    return jnp.stack(out).astype(jnp.int32)
