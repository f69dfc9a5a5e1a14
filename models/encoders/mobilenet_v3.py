"""MobileNetV3 Large / Small (Howard et al. 2019), block tables as in torchvision.

Width scaling follows torchvision: every channel count, the stem, the last 1x1 conv and the
classifier's hidden width go through `make_divisible(c * width, 8)`; SE squeezes to
`make_divisible(expanded // 4, 8)`. The last 1x1 conv (960 / 576 at width 1) is part of the
encoder, as in torchvision's `features`; LR-ASPP reads it.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from models.encoders.common import BlockSpec, run_blocks, scale_repeats
from models.layers import ConvBNAct, make_divisible

# (kernel, expanded, out, SE, activation, stride), grouped into stages for the depth multiplier.
_LARGE = [
    [(3, 16, 16, False, "relu", 1)],
    [(3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1)],
    [(5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1)],
    [
        (3, 240, 80, False, "hswish", 2),
        (3, 200, 80, False, "hswish", 1),
        (3, 184, 80, False, "hswish", 1),
        (3, 184, 80, False, "hswish", 1),
    ],
    [(3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1)],
    [
        (5, 672, 160, True, "hswish", 2),
        (5, 960, 160, True, "hswish", 1),
        (5, 960, 160, True, "hswish", 1),
    ],
]
_SMALL = [
    [(3, 16, 16, True, "relu", 2)],
    [(3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1)],
    [
        (5, 96, 40, True, "hswish", 2),
        (5, 240, 40, True, "hswish", 1),
        (5, 240, 40, True, "hswish", 1),
    ],
    [(5, 120, 48, True, "hswish", 1), (5, 144, 48, True, "hswish", 1)],
    [
        (5, 288, 96, True, "hswish", 2),
        (5, 576, 96, True, "hswish", 1),
        (5, 576, 96, True, "hswish", 1),
    ],
]
VARIANTS = {"large": (_LARGE, 1280), "small": (_SMALL, 1024)}


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
            for k, e, o, se, act, s in group
        ]
        for group in table
    ]
    return scale_repeats(groups, depth)


def classifier_hidden(variant: str, width: float) -> int:
    """The classifier's hidden Dense width: 1280 (large) or 1024 (small) scaled by `width`."""
    return make_divisible(VARIANTS[variant][1] * width)


class MobileNetV3(nn.Module):
    """MobileNetV3 feature extractor; its fields are the knobs of the search space."""

    variant: str = "large"
    width: float = 1.0
    depth: float = 1.0
    output_stride: int = 32
    conv_type: str = "depthwise"
    group_size: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, H/s, W/s, C) features; the deepest is the last 1x1 conv's output."""
        blocks = block_specs(self.variant, self.width, self.depth)
        # The stem is a plain 3x3 conv: conv_type applies to the blocks' spatial convs only.
        x = ConvBNAct(make_divisible(16 * self.width), 3, 2, act="hswish", name="stem")(x, train)
        features = {2: x}
        x, stride, _ = run_blocks(
            x,
            blocks,
            stride=2,
            output_stride=self.output_stride,
            conv_type=self.conv_type,
            group_size=self.group_size,
            train=train,
            features=features,
        )
        features[stride] = ConvBNAct(6 * blocks[-1].out, act="hswish", name="last_conv")(x, train)
        return features
