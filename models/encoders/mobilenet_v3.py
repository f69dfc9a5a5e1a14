"""MobileNetV3 Large / Small (Howard et al. 2019), block tables as in torchvision.

Width scaling follows torchvision: every channel count, the stem, the last 1x1 conv and the
classifier's hidden width go through `make_divisible(c * width, 8)`; SE squeezes to
`make_divisible(expanded // 4, 8)`. The last 1x1 conv (960 / 576 at width 1) is part of the
encoder, as in torchvision's `features`; LR-ASPP reads it.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax

from models.encoders.common import BlockSpec, run_blocks, scale_repeats
from models.layers import ConvBNAct, ConvSpec, check_number, make_divisible


class Row(NamedTuple):
    """One block of the reference table, before width scaling."""

    kernel: int
    expanded: int
    out: int
    se: bool
    act: str
    stride: int


# Block rows grouped into stages (the depth multiplier repeats within a stage).
_LARGE = [
    [
        Row(kernel=3, expanded=16, out=16, se=False, act="relu", stride=1),
    ],
    [
        Row(kernel=3, expanded=64, out=24, se=False, act="relu", stride=2),
        Row(kernel=3, expanded=72, out=24, se=False, act="relu", stride=1),
    ],
    [
        Row(kernel=5, expanded=72, out=40, se=True, act="relu", stride=2),
        Row(kernel=5, expanded=120, out=40, se=True, act="relu", stride=1),
        Row(kernel=5, expanded=120, out=40, se=True, act="relu", stride=1),
    ],
    [
        Row(kernel=3, expanded=240, out=80, se=False, act="hswish", stride=2),
        Row(kernel=3, expanded=200, out=80, se=False, act="hswish", stride=1),
        Row(kernel=3, expanded=184, out=80, se=False, act="hswish", stride=1),
        Row(kernel=3, expanded=184, out=80, se=False, act="hswish", stride=1),
    ],
    [
        Row(kernel=3, expanded=480, out=112, se=True, act="hswish", stride=1),
        Row(kernel=3, expanded=672, out=112, se=True, act="hswish", stride=1),
    ],
    [
        Row(kernel=5, expanded=672, out=160, se=True, act="hswish", stride=2),
        Row(kernel=5, expanded=960, out=160, se=True, act="hswish", stride=1),
        Row(kernel=5, expanded=960, out=160, se=True, act="hswish", stride=1),
    ],
]
_SMALL = [
    [
        Row(kernel=3, expanded=16, out=16, se=True, act="relu", stride=2),
    ],
    [
        Row(kernel=3, expanded=72, out=24, se=False, act="relu", stride=2),
        Row(kernel=3, expanded=88, out=24, se=False, act="relu", stride=1),
    ],
    [
        Row(kernel=5, expanded=96, out=40, se=True, act="hswish", stride=2),
        Row(kernel=5, expanded=240, out=40, se=True, act="hswish", stride=1),
        Row(kernel=5, expanded=240, out=40, se=True, act="hswish", stride=1),
    ],
    [
        Row(kernel=5, expanded=120, out=48, se=True, act="hswish", stride=1),
        Row(kernel=5, expanded=144, out=48, se=True, act="hswish", stride=1),
    ],
    [
        Row(kernel=5, expanded=288, out=96, se=True, act="hswish", stride=2),
        Row(kernel=5, expanded=576, out=96, se=True, act="hswish", stride=1),
        Row(kernel=5, expanded=576, out=96, se=True, act="hswish", stride=1),
    ],
]
VARIANTS = {"large": (_LARGE, 1280), "small": (_SMALL, 1024)}
MAX_MULTIPLIER = 4.0


def block_specs(variant: str, width: float, depth: float) -> list[BlockSpec]:
    """The blocks of `variant`, channels scaled by `width`, repeats per stage by `depth`."""
    table, _ = VARIANTS[variant]
    groups = [
        [
            BlockSpec(
                k,
                make_divisible(e * width),
                make_divisible(o * width),
                make_divisible(make_divisible(e * width) // 4) if se else 0,
                act,
                s,
            )
            for k, e, o, se, act, s in group  # Row fields in order
        ]
        for group in table
    ]
    return scale_repeats(groups, depth)


def classifier_head(variant: str, config: MobileNetV3Config) -> dict:
    """The ImageNet classifier's settings: a hidden Dense of 1280 (large) or 1024 (small)
    channels scaled by the width, dropout 0.2 (torchvision)."""
    return {"hidden": make_divisible(VARIANTS[variant][1] * config.width), "dropout": 0.2}


@dataclasses.dataclass(frozen=True)
class MobileNetV3Config:
    """The family's knobs: multipliers on torchvision's channels (`width`) and per-stage block
    counts (`depth`)."""

    width: float = 1.0
    depth: float = 1.0

    def validate(self) -> MobileNetV3Config:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        check_number("width", self.width, 0.0, MAX_MULTIPLIER)
        check_number("depth", self.depth, 0.0, MAX_MULTIPLIER)
        return self


class MobileNetV3(nn.Module):
    """MobileNetV3 feature extractor: `variant` is fixed by the encoder's name, `config` holds
    its knobs, `conv` the spatial convs' grouping."""

    variant: str = "large"
    config: MobileNetV3Config = MobileNetV3Config()
    output_stride: int = 32
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, ceil(H/s), ceil(W/s), C) features; the deepest (at the output stride) is
        the last 1x1 conv's output."""
        width, depth = self.config.width, self.config.depth
        blocks = block_specs(self.variant, width, depth)
        # The stem is a plain 3x3 conv: `conv` applies to the blocks' spatial convs only.
        x = ConvBNAct(make_divisible(16 * width), 3, 2, act="hswish", name="stem")(x, train)
        features = {2: x}
        x, stride, _ = run_blocks(
            x,
            blocks,
            stride=2,
            output_stride=self.output_stride,
            conv=self.conv,
            train=train,
            features=features,
        )
        features[stride] = ConvBNAct(6 * blocks[-1].out, act="hswish", name="last_conv")(x, train)
        return features
