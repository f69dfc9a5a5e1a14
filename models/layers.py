"""Building blocks shared by every encoder and decoder (Flax Linen, NHWC).

Conventions that matter for export and counting:
- a convolution followed by BatchNorm has no bias (the exporter folds BN into it);
- convs pad like TF "SAME" (flax's `padding="SAME"` computes TF's padding: total
  max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0), the odd pixel after), so a stride-2
  conv maps any n to ceil(n / 2) and odd input sizes work as in the TF reference code;
- BatchNorm uses TF momentum 0.99 and epsilon 1e-3 (MobileNetV3 and EfficientNet-Lite);
- `upsample_bilinear` wraps `jax.image.resize` in the `odml.upsample_bilinear2d` composite so
  that it converts to one TFLite RESIZE_BILINEAR rather than constant matmuls; it is for
  upsampling only (jax antialiases when shrinking, TFLite does not).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3
# He-normal over fan-out, as the reference MobileNetV3 / EfficientNet code initialise convs.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between (the SE gate)."""
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_swish(x: jax.Array) -> jax.Array:
    """x * relu6(x + 3) / 6, MobileNetV3's activation (exports as one TFLite HARD_SWISH)."""
    # Written as x * relu6(x + 3) / 6 so the TFLite converter pattern-matches HARD_SWISH.
    return x * jax.nn.relu6(x + 3.0) / 6.0


def _identity(x: jax.Array) -> jax.Array:
    return x


# Activation names used in block tables and latency signatures.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "hswish": hard_swish,
    "none": _identity,
}


def make_divisible(v: float, divisor: int = 8) -> int:
    """Rounds a channel count to a multiple of `divisor`, never dropping below 90 % of `v`."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


CONV_TYPES: tuple[str, ...] = ("depthwise", "group", "regular")


def check_number(field: str, value: object, low: float, high: float) -> float:
    """`value` if it is a number in (low, high], else a ValueError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        raise ValueError(f"{field}: got {value!r}; allowed: a number in ({low:g}, {high:g}]")
    return value


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """How the k x k spatial convs of the blocks and decoder stages are grouped.

    `depthwise`: one channel per group; `group`: `group_size` channels per group (when it does
    not divide a layer's channels, gcd(channels, group_size) keeps the layer legal, so every
    value stays buildable at every width); `regular`: one group. Built once and injected into
    every block, as flax's imagenet example injects its conv and norm. `group_size` applies to
    `group` only; the other types ignore it.
    """

    type: str = "depthwise"
    group_size: int = 8

    def validate(self) -> ConvSpec:
        """Raises ValueError naming the field and the allowed values; returns self."""
        if self.type not in CONV_TYPES:
            raise ValueError(f"type: got {self.type!r}; allowed: {', '.join(CONV_TYPES)}")
        if type(self.group_size) is not int or not 1 <= self.group_size <= 1024:
            raise ValueError(
                f"group_size: got {self.group_size!r}; allowed: an integer in [1, 1024]"
            )
        return self

    def groups(self, channels: int) -> int:
        """feature_group_count of a k x k conv over `channels` channels."""
        if self.type == "depthwise":
            return channels
        if self.type == "group":
            return channels // math.gcd(channels, self.group_size)
        return 1


class ConvBNAct(nn.Module):
    """k x k convolution (optionally grouped / dilated) + BatchNorm + activation."""

    features: int
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    act: str = "relu"
    # segnas's TF-style defaults; a family ported from PyTorch / Paddle passes its own.
    bn_momentum: float = BN_MOMENTUM
    bn_epsilon: float = BN_EPSILON

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H/stride, W/stride, features): conv, BatchNorm (batch stats if `train`), act."""
        x = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            strides=self.stride,
            kernel_dilation=self.dilation,
            feature_group_count=self.groups,
            padding="SAME",
            use_bias=False,
            kernel_init=CONV_INIT,
            name="conv",
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            name="bn",
        )(x)
        return ACTIVATIONS[self.act](x)


def paddle_hard_sigmoid(x: jax.Array) -> jax.Array:
    """clip(0.2 x + 0.5, 0, 1): Paddle's hard-sigmoid (0 below -2.5, 1 above 2.5), the SE gate
    of PP-MobileSeg's MobileNetV3 blocks."""
    return jnp.clip(0.2 * x + 0.5, 0.0, 1.0)


# SE gates by name: torchvision / TF's relu6(x + 3) / 6, or Paddle's.
SE_GATES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "hard_sigmoid": hard_sigmoid,
    "paddle_hard_sigmoid": paddle_hard_sigmoid,
}


class SqueezeExcite(nn.Module):
    """Global average pool -> 1x1 (bias) -> ReLU -> 1x1 (bias) -> `gate` -> rescale."""

    squeeze: int
    gate: str = "hard_sigmoid"  # a name of SE_GATES

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`x` with each channel rescaled by a gate in [0, 1] computed from its global mean."""
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = nn.relu(nn.Conv(self.squeeze, (1, 1), name="reduce")(s))
        s = nn.Conv(x.shape[-1], (1, 1), name="expand")(s)
        return x * SE_GATES[self.gate](s)


class InvertedResidual(nn.Module):
    """MobileNetV3 / EfficientNet-Lite block: [1x1 expand] -> k x k spatial -> [SE] -> 1x1 project.

    The expand conv is omitted when `expanded == in channels` (both reference families do so);
    the identity skip applies when stride is 1 and channels are unchanged.
    """

    expanded: int
    out: int
    kernel: int = 3
    stride: int = 1
    dilation: int = 1
    se_squeeze: int = 0  # 0: no squeeze-and-excite
    act: str = "relu"
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """The block's output (N, H/stride, W/stride, out), the input added if the skip applies."""
        inp = x
        if self.expanded != x.shape[-1]:
            x = ConvBNAct(self.expanded, act=self.act, name="expand")(x, train)
        x = ConvBNAct(
            self.expanded,
            self.kernel,
            self.stride,
            self.dilation,
            self.conv.groups(self.expanded),
            act=self.act,
            name="spatial",
        )(x, train)
        if self.se_squeeze:
            x = SqueezeExcite(self.se_squeeze, name="se")(x)
        x = ConvBNAct(self.out, act="none", name="project")(x, train)
        if self.stride == 1 and inp.shape[-1] == self.out:
            x = x + inp
        return x


@functools.partial(jax.lax.composite, name="odml.upsample_bilinear2d")
def _bilinear_composite(x, /, *, size, align_corners, is_nchw_op):
    del align_corners, is_nchw_op  # attributes read by the TFLite converter only
    return jax.image.resize(x, (x.shape[0], int(size[0]), int(size[1]), x.shape[3]), "bilinear")


def upsample_bilinear(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """NHWC half-pixel bilinear upsampling to `out_hw`; exports as one RESIZE_BILINEAR."""
    if tuple(x.shape[1:3]) == tuple(out_hw):
        return x
    if out_hw[0] < x.shape[1] or out_hw[1] < x.shape[2]:
        raise ValueError(
            f"upsample_bilinear: {x.shape[1:3]} -> {out_hw} shrinks; only "
            "upsampling is allowed (downsample with strided conv or pooling)"
        )
    return _upsample(x, (int(out_hw[0]), int(out_hw[1])))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _upsample(x: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    return _bilinear_composite(
        x, size=np.asarray(out_hw, np.int64), align_corners=False, is_nchw_op=False
    )


@_upsample.defjvp
def _upsample_jvp(out_hw, primals, tangents):
    # jax.lax.composite has no autodiff rule, so training could not differentiate through the
    # composite. Bilinear resizing is linear in x: its tangent is the plain resize of the
    # tangent (transposable for reverse mode); the forward pass keeps the composite for export.
    (x,), (t,) = primals, tangents
    return _upsample(x, out_hw), jax.image.resize(t, (t.shape[0], *out_hw, t.shape[3]), "bilinear")
