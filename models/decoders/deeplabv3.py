"""DeepLabV3 heads (seed 001): the `basic` cell and the dense prediction cell (`dpc`).

Both read only the deepest encoder feature (at 1/output_stride) and end in a 1x1 logits conv
(with bias, no BN) and a bilinear upsample to the input size (align_corners=True, as the
reference); there is no DeepLabV3+ skip decoder.

- `basic` (DeepLabV3's ASPP without its atrous branches): [global mean -> 1x1 conv 256 + BN +
  ReLU -> resize to the feature size] || [1x1 conv 256 + BN + ReLU] -> concat (512) -> 1x1
  conv 256 + BN + ReLU -> dropout (keep 0.9) -> logits.
- `dpc` (the five-branch cell found for Cityscapes): each branch is a split separable conv, a
  3x3 depthwise conv with a rectangular rate [rh, rw] + BN + ReLU, then a 1x1 conv 256 + BN +
  ReLU, fed by the feature or an earlier branch as `DPC_BRANCHES` lists -> concat of all five
  (1280) -> dropout (keep 0.9) -> 1x1 conv 256 + BN + ReLU -> logits.

DPC rates are given for output stride 16 and scaled to keep the same reach in image pixels:
x2 at output stride 8 (the reference's `16 // output_stride`). At output stride 32 that integer
factor is 0, which would make every rate 0; segnas defines the rates there as the stride-16
rates halved, rounded up (so never below 1): ceil(r * 16 / output_stride) covers all three.

Resizing follows the reference: bilinear with align_corners=True (corner pixels map to corner
pixels), written here because `models.layers.upsample_bilinear` samples half-pixel centres.
It exports as one RESIZE_BILINEAR(align_corners=True) through the same
`odml.upsample_bilinear2d` composite. Its body builds indices and weights in-graph (iota):
with numpy constants captured from outside, litert-converter 0.5.0 left the composite as a
non-builtin STABLEHLO_COMPOSITE.

The head's own BatchNorm uses the reference head's settings (decay 0.9997, epsilon 1e-5), not
segnas's encoder defaults (0.99, 1e-3). Its convs are 1x1 or the fixed DPC depthwise, so the
shared `conv` spec (grouping of k x k convs) does not apply to it and is ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.layers import CONV_INIT, ConvSpec

CELLS: tuple[str, ...] = ("basic", "dpc")
CHANNELS = 256
DROPOUT = 0.1  # the reference's keep probability 0.9
BN_MOMENTUM = 0.9997
BN_EPSILON = 1e-5
# DPC branches at output stride 16: (input, [rh, rw]); input -1 is the encoder feature,
# k >= 0 the output of branch k.
DPC_BRANCHES: tuple[tuple[int, tuple[int, int]], ...] = (
    (-1, (1, 6)),
    (0, (18, 15)),
    (1, (6, 3)),
    (0, (1, 1)),
    (0, (6, 21)),
)
DPC_OUTPUT_STRIDES: tuple[int, ...] = (8, 16, 32)


def dpc_rates(output_stride: int) -> tuple[tuple[int, int], ...]:
    """The DPC branches' [rh, rw] at `output_stride`: ceil(r * 16 / output_stride) (module
    docstring); ValueError for strides other than 8, 16, 32."""
    if output_stride not in DPC_OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride: got {output_stride!r}; allowed: "
            + ", ".join(map(str, DPC_OUTPUT_STRIDES))
        )
    return tuple(
        tuple(max(1, math.ceil(r * 16 / output_stride)) for r in rate) for _, rate in DPC_BRANCHES
    )


def _resize(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """Separable align-corners bilinear interpolation; indices and weights from iota, in
    float32 as TFLite computes them."""
    for axis, n_out in ((1, out_hw[0]), (2, out_hw[1])):
        n_in = x.shape[axis]
        # output i samples input i * (n_in - 1) / (n_out - 1): corners to corners
        scale = np.float32((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
        pos = jnp.arange(n_out, dtype=jnp.float32) * scale
        lo = jnp.minimum(jnp.floor(pos).astype(jnp.int32), n_in - 1)
        hi = jnp.minimum(lo + 1, n_in - 1)
        w = pos - lo.astype(jnp.float32)
        w = w.reshape((1, n_out, 1, 1) if axis == 1 else (1, 1, n_out, 1))
        x = jnp.take(x, lo, axis=axis) * (1 - w) + jnp.take(x, hi, axis=axis) * w
    return x


@functools.partial(jax.lax.composite, name="odml.upsample_bilinear2d")
def _resize_composite(x, /, *, size, align_corners, is_nchw_op):
    del align_corners, is_nchw_op  # read by the TFLite converter only
    return _resize(x, (int(size[0]), int(size[1])))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _resize_align_corners(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    return _resize_composite(
        x, size=np.asarray(out_hw, np.int64), align_corners=True, is_nchw_op=False
    )


@_resize_align_corners.defjvp
def _resize_jvp(out_hw, primals, tangents):
    # A composite has no autodiff rule; the resize is linear, so its tangent is the plain
    # resize of the tangent, while the forward pass keeps the composite for export.
    (x,), (t,) = primals, tangents
    return _resize_align_corners(x, out_hw), _resize(t, out_hw)


def resize_align_corners(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """NHWC bilinear resize with align_corners=True (TF's `resize_bilinear` as DeepLab calls
    it); exports as one RESIZE_BILINEAR(align_corners=True, half_pixel_centers=False). Meant
    for upsampling, as every segnas resize (tested that way)."""
    out_hw = (int(out_hw[0]), int(out_hw[1]))
    if tuple(x.shape[1:3]) == out_hw:
        return x
    return _resize_align_corners(x, out_hw)


@dataclasses.dataclass(frozen=True)
class DeepLabV3Config:
    """The head's knob: which cell runs on the deepest feature (module docstring)."""

    cell: str = "basic"

    def validate(self) -> DeepLabV3Config:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        if self.cell not in CELLS:
            raise ValueError(f"cell: got {self.cell!r}; allowed: {', '.join(CELLS)}")
        return self


class HeadConvBN(nn.Module):
    """Conv (1x1, or a 3x3 depthwise with a [rh, rw] rate) + BN (head settings) + ReLU."""

    features: int
    kernel: int = 1
    rate: tuple[int, int] = (1, 1)
    depthwise: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, features), TF-SAME padding, stride 1."""
        x = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            kernel_dilation=tuple(self.rate),
            feature_group_count=x.shape[-1] if self.depthwise else 1,
            padding="SAME",
            use_bias=False,
            kernel_init=CONV_INIT,
            name="conv",
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="bn"
        )(x)
        return nn.relu(x)


class SplitSeparable(nn.Module):
    """A DPC branch: 3x3 depthwise at rate [rh, rw] + BN + ReLU, then 1x1 conv + BN + ReLU."""

    features: int
    rate: tuple[int, int]

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, features)."""
        x = HeadConvBN(x.shape[-1], 3, self.rate, depthwise=True, name="depthwise")(x, train)
        return HeadConvBN(self.features, name="pointwise")(x, train)


class DeepLabV3(nn.Module):
    """The DeepLabV3 head: `config.cell` on the deepest feature, logits at the input size."""

    num_classes: int
    config: DeepLabV3Config = DeepLabV3Config()
    conv: ConvSpec = ConvSpec()  # ignored: the head's convs are 1x1 or the fixed DPC depthwise

    @nn.compact
    def __call__(
        self, features: dict[int, jax.Array], out_hw: tuple[int, int], train: bool = False
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits (N, *out_hw, num_classes) and aux {"decoded": the 256-channel projection}."""
        self.config.validate()
        stride = max(features)
        x = features[stride]
        if self.config.cell == "basic":
            pooled = jnp.mean(x, axis=(1, 2), keepdims=True)
            pooled = HeadConvBN(CHANNELS, name="image_pooling")(pooled, train)
            branches = [
                resize_align_corners(pooled, x.shape[1:3]),
                HeadConvBN(CHANNELS, name="aspp0")(x, train),
            ]
            x = HeadConvBN(CHANNELS, name="concat_projection")(jnp.concatenate(branches, -1), train)
            decoded = x
            x = nn.Dropout(DROPOUT, deterministic=not train, name="dropout")(x)
        else:
            branches = []
            for i, ((src, _), rate) in enumerate(zip(DPC_BRANCHES, dpc_rates(stride), strict=True)):
                inp = x if src < 0 else branches[src]
                branches.append(SplitSeparable(CHANNELS, rate, name=f"branch{i}")(inp, train))
            x = nn.Dropout(DROPOUT, deterministic=not train, name="dropout")(
                jnp.concatenate(branches, -1)
            )
            x = decoded = HeadConvBN(CHANNELS, name="concat_projection")(x, train)
        logits = nn.Conv(self.num_classes, (1, 1), name="logits")(x)
        return resize_align_corners(logits, out_hw), {"decoded": decoded}
