"""MobileNetV2 (Sandler et al. 2018), the TF-slim / torchvision layout: a 3x3/2 stem of 32, then
17 inverted-residual blocks (ReLU6, no SE, linear 1x1 projection) in seven groups of
(expansion t, channels c, repeats n, stride s):

    (1, 16, 1, 1) (6, 24, 2, 2) (6, 32, 3, 2) (6, 64, 4, 2) (6, 96, 3, 1) (6, 160, 3, 2)
    (6, 320, 1, 1)

Width: the stem and every group's channels go through `make_divisible(c * width, 8)`; a block's
expanded width is `round(inputs * t)` (torchvision). Depth: `ceil(depth * n)` blocks per group,
the extra ones repeating the group's stride-1 block. The segmentation encoder ends at the
320-channel block (TF-slim's `layer_18`, which seed 001's MobileNetV2 comparison reads); the
1x1 conv to 1280 (`1280 * max(1, width)`, ReLU6) belongs to the ImageNet classifier
(models/decoders/classifier.py), as EfficientNet-Lite's head conv does.

Output stride 8 / 16 / 32 follows DeepLab's rule for TF-slim's MobileNetV2 (the model seed 001
compares against), the rule seed 001's ShuffleNetV2 uses too: a stride-2 block that would go
below 1/output_stride runs at stride 1 at the current rate, and the rate of every later spatial
conv is multiplied by the stride given up. At output stride 16 blocks 15-17 run at rate 2 (block
14, which stops striding, at 1); at 8, blocks 8-14 at 2 and 15-17 at 4. (torchvision's dilated
MobileNetV3 also dilates the block that stops striding: `models.encoders.common.run_blocks`.)
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax

from models.encoders.common import BlockSpec, scaled_repeats
from models.layers import ConvBNAct, ConvSpec, InvertedResidual, check_number, make_divisible


class Group(NamedTuple):
    """One block group of the reference table (width 1)."""

    expansion: int
    out: int
    repeats: int
    stride: int


_GROUPS = [
    Group(expansion=1, out=16, repeats=1, stride=1),
    Group(expansion=6, out=24, repeats=2, stride=2),
    Group(expansion=6, out=32, repeats=3, stride=2),
    Group(expansion=6, out=64, repeats=4, stride=2),
    Group(expansion=6, out=96, repeats=3, stride=1),
    Group(expansion=6, out=160, repeats=3, stride=2),
    Group(expansion=6, out=320, repeats=1, stride=1),
]
STEM = 32
HEAD = 1280
MAX_MULTIPLIER = 4.0


def group_repeats(depth: float) -> list[int]:
    """Blocks per group after the depth multiplier."""
    return [scaled_repeats(g.repeats, depth) for g in _GROUPS]


def stem_channels(width: float) -> int:
    """The stem's channels at `width`."""
    return make_divisible(STEM * width)


def block_specs(width: float, depth: float) -> list[BlockSpec]:
    """The blocks at `width` and `depth` (module docstring)."""
    blocks, cin = [], stem_channels(width)
    for g, repeats in zip(_GROUPS, group_repeats(depth), strict=True):
        cout = make_divisible(g.out * width)
        for i in range(repeats):
            # torchvision rounds the expanded width to the nearest integer (int(round(.))).
            expanded = int(round(cin * g.expansion))
            blocks.append(BlockSpec(3, expanded, cout, 0, "relu6", g.stride if i == 0 else 1))
            cin = cout
    return blocks


def schedule(blocks: list[BlockSpec], output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of each block at `output_stride` (module docstring); the stem has
    already taken the input to stride 2."""
    out, stride, rate = [], 2, 1
    for b in blocks:
        if b.stride > 1 and stride * b.stride > output_stride:
            out.append((1, rate))
            rate *= b.stride  # taken up by the later blocks, not this one (DeepLab)
        else:
            stride *= b.stride
            out.append((b.stride, rate))
    return out


def classifier_head(variant: str, config: MobileNetV2Config) -> dict:
    """The ImageNet classifier's settings: the 1x1 conv to 1280 (scaled only above width 1)
    + BN + ReLU6, dropout 0.2 (torchvision)."""
    return {"head_conv": make_divisible(HEAD * max(1.0, config.width)), "dropout": 0.2}


@dataclasses.dataclass(frozen=True)
class MobileNetV2Config:
    """The family's knobs: multipliers on the reference channels (`width`) and per-group block
    counts (`depth`)."""

    width: float = 1.0
    depth: float = 1.0

    def validate(self) -> MobileNetV2Config:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        check_number("width", self.width, 0.0, MAX_MULTIPLIER)
        check_number("depth", self.depth, 0.0, MAX_MULTIPLIER)
        return self


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor: `config` holds its knobs, `conv` the blocks' spatial
    convs' grouping (`variant` is the one layout there is, kept for the family interface)."""

    variant: str = "v2"
    config: MobileNetV2Config = MobileNetV2Config()
    output_stride: int = 32
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, H/s, W/s, C) features: the stem at 2, then each stride's last block
        (the 320-channel block is the deepest)."""
        if self.output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride: got {self.output_stride!r}; allowed: 8, 16, 32")
        # The stem is a plain 3x3 conv: `conv` applies to the blocks' spatial convs only.
        x = ConvBNAct(stem_channels(self.config.width), 3, 2, act="relu6", name="stem")(x, train)
        features, stride = {2: x}, 2
        blocks = block_specs(self.config.width, self.config.depth)
        for i, (b, (s, rate)) in enumerate(
            zip(blocks, schedule(blocks, self.output_stride), strict=True), start=1
        ):
            x = InvertedResidual(
                b.expanded, b.out, b.kernel, s, rate, 0, b.act, self.conv, name=f"block{i}"
            )(x, train)
            stride *= s
            features[stride] = x
        return features
