"""ShuffleNetV2 (Ma et al. 2018): torchvision's classification layout and seed 001's
segmentation variant ("An efficient solution for semantic segmentation: ShuffleNet V2 with
atrous separable convolutions").

Both: a 3x3/2 stem conv of 24 channels (BN, ReLU), a 3x3/2 max pool, then stages 2-4 of 4 / 8 /
4 units whose channels double from stage to stage. A stage's first unit is the two-branch
downsampling unit: a shortcut branch (depthwise 3x3 + BN, 1x1 + BN + ReLU) beside the main
branch (1x1 + BN + ReLU, depthwise 3x3 + BN, 1x1 + BN + ReLU), each giving half the unit's
output channels. The other units split the channels in halves, keep the first and run the
main branch on the second. Every unit ends in concatenation and a channel shuffle of two
groups (torchvision's order: out[2j + g] = in[g * C/2 + j]); split and shuffle are slices,
reshapes and a transpose, which export as TFLite builtins.

The two variants (`variant`, fixed by the encoder's name):
- `torchvision`: stage-2 widths 48 / 116 / 176 / 244 for width 0.5 / 1.0 / 1.5 / 2.0; the
  downsampling unit's main branch starts with a 1x1 from the input to half the output.
  torchvision's conv5 (1x1 to 1024, 2048 at width 2.0, + BN + ReLU) comes after stage 4 and
  before global pooling; segnas gives it to the ImageNet classifier (models/decoders/
  classifier.py), as it does EfficientNet-Lite's head conv, so the encoder ends at stage 4.
- `seg` (seed 001): stage-2 widths 48 / 116 / 176 / 224, no conv5, and the downsampling unit's
  first main-branch 1x1 maps the input to itself (in -> in), which changes stage 2 only (later
  stages' inputs are already half their outputs).
BatchNorm is segnas's (TF momentum 0.99, epsilon 1e-3); seed 001's code has epsilon 1e-3 too and
momentum 0.997, which only changes how fast training updates the running statistics.

Output stride (seed 001 section 3.1 and Table 1): a stage whose downsampling unit would take the
features below 1/output_stride runs that unit at stride 1 at the current rate (1 at first), and
the rate of every later depthwise conv doubles, so it ends at network stride / output stride.
Output stride 16: stage 4's first unit at stride 1, its other three units at rate 2. Output
stride 8: stage 3's first unit at stride 1, its other units at rate 2; stage 4's first unit at
rate 2, the rest at rate 4. Output stride 32 is the plain network. (This is DeepLab's rule for
its TF-slim backbones: the unit that stops striding is not itself dilated.)
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.layers import ConvBNAct, ConvSpec

WIDTHS: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
# variant -> width -> stage-2 output channels (stages 3 and 4 double it)
STAGE2: dict[str, dict[float, int]] = {
    "torchvision": {0.5: 48, 1.0: 116, 1.5: 176, 2.0: 244},
    "seg": {0.5: 48, 1.0: 116, 1.5: 176, 2.0: 224},
}
CONV5: dict[float, int] = {0.5: 1024, 1.0: 1024, 1.5: 1024, 2.0: 2048}
REPEATS: tuple[int, ...] = (4, 8, 4)  # units of stages 2, 3, 4
STEM = 24
OUTPUT_STRIDES: tuple[int, ...] = (8, 16, 32)


class Unit(NamedTuple):
    """One unit of the plan: its stage (2-4), index in the stage, output channels, stride and
    the dilation of its depthwise convs."""

    stage: int
    index: int
    out: int
    stride: int
    dilation: int


def stage_channels(variant: str, width: float) -> tuple[int, ...]:
    """Output channels of stages 2, 3 and 4."""
    c = STAGE2[variant][width]
    return (c, 2 * c, 4 * c)


def unit_plan(variant: str, width: float, output_stride: int) -> list[Unit]:
    """Every unit in order, with the stride and rate the output stride gives it (module
    docstring)."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(
            f"output_stride: got {output_stride!r}; allowed: {', '.join(map(str, OUTPUT_STRIDES))}"
        )
    units, stride, rate = [], 4, 1  # after stem and max pool
    for stage, (out, n) in enumerate(
        zip(stage_channels(variant, width), REPEATS, strict=True), start=2
    ):
        for index in range(n):
            if index == 0 and stride * 2 > output_stride:
                units.append(Unit(stage, 0, out, 1, rate))
                rate *= 2  # the stride this unit gave up, taken by the later units' dilation
            elif index == 0:
                stride *= 2
                units.append(Unit(stage, 0, out, 2, rate))
            else:
                units.append(Unit(stage, index, out, 1, rate))
    return units


def channel_shuffle(x: jax.Array, groups: int = 2) -> jax.Array:
    """NHWC channel shuffle: channel g * C/groups + j moves to j * groups + g."""
    n, h, w, c = x.shape
    # Pixels flattened so the transpose is 4-D (TFLite's TRANSPOSE takes up to 6-D anyway).
    x = x.reshape(n, h * w, groups, c // groups)
    return jnp.transpose(x, (0, 1, 3, 2)).reshape(n, h, w, c)


def classifier_head(variant: str, config: ShuffleNetV2Config) -> dict:
    """The ImageNet classifier's settings: torchvision's conv5 (1x1 + BN + ReLU, 1024 or 2048
    channels) before pooling, no dropout. The seg variant has no ImageNet layout of its own in
    seed 001; it gets the same head."""
    return {"head_conv": CONV5[config.width], "head_act": "relu", "dropout": 0.0}


@dataclasses.dataclass(frozen=True)
class ShuffleNetV2Config:
    """The family's knob: `width`, one of the published widths (the stage widths are a table,
    not a multiplier formula, so other values have no definition)."""

    width: float = 1.0

    def validate(self) -> ShuffleNetV2Config:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        if isinstance(self.width, bool) or self.width not in WIDTHS:
            raise ValueError(f"width: got {self.width!r}; allowed: {', '.join(map(str, WIDTHS))}")
        return self


class ShuffleUnit(nn.Module):
    """A ShuffleNetV2 unit (module docstring): the two-branch downsampling unit when
    `downsample`, else the split unit. `wide_main`: the main branch's first 1x1 keeps the
    input's channels (seed 001's downsampling unit)."""

    out: int
    stride: int = 1
    dilation: int = 1
    downsample: bool = False
    wide_main: bool = False
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H/stride, W/stride, out), channels shuffled."""
        half = self.out // 2
        if self.downsample:
            cin = x.shape[-1]
            short = self._spatial(cin, "shortcut_spatial")(x, train)
            short = ConvBNAct(half, act="relu", name="shortcut_project")(short, train)
            main, mid = x, cin if self.wide_main else half
        else:
            short, main = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
            mid = half
        y = ConvBNAct(mid, act="relu", name="expand")(main, train)
        y = self._spatial(mid, "spatial")(y, train)
        y = ConvBNAct(half, act="relu", name="project")(y, train)
        return channel_shuffle(jnp.concatenate([short, y], axis=-1))

    def _spatial(self, channels: int, name: str) -> ConvBNAct:
        # ShuffleNetV2 has no activation after its depthwise convs.
        return ConvBNAct(
            channels,
            3,
            self.stride,
            self.dilation,
            self.conv.groups(channels),
            act="none",
            name=name,
        )


class ShuffleNetV2(nn.Module):
    """ShuffleNetV2 feature extractor: `variant` ("torchvision" or "seg") is fixed by the
    encoder's name, `config` holds its width, `conv` the units' spatial convs' grouping."""

    variant: str = "torchvision"
    config: ShuffleNetV2Config = ShuffleNetV2Config()
    output_stride: int = 32
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, H/s, W/s, C) features: the stem at 2, the max pool at 4, then each
        stride's last unit (stage 4's output is the deepest)."""
        # The stem is a plain 3x3 conv: `conv` applies to the units' spatial convs only.
        x = ConvBNAct(STEM, 3, 2, act="relu", name="stem")(x, train)
        features = {2: x}
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        features[4], stride = x, 4
        for u in unit_plan(self.variant, self.config.width, self.output_stride):
            stride *= u.stride
            x = ShuffleUnit(
                u.out,
                u.stride,
                u.dilation,
                downsample=u.index == 0,
                wide_main=self.variant == "seg",
                conv=self.conv,
                name=f"stage{u.stage}_{u.index}",
            )(x, train)
            features[stride] = x
        return features
