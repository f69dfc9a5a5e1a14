"""EfficientNet-Lite0..4 (tensorflow/tpu `efficientnet_lite_builder`): ReLU6, no SE.

Lite rules: the stem (32) and the classifier's head conv (1280) are never scaled, nor are the
repeats of the first and last block groups. Channels: `make_divisible(c * width, 8)`; repeats:
`ceil(depth * r)`. The segmentation encoder stops at the last block (320 channels for Lite0);
the 1x1 head conv belongs to the ImageNet classifier (models/decoders/classifier.py).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax

from models.encoders.common import BlockSpec, run_blocks, scaled_repeats
from models.layers import ConvBNAct, ConvSpec, check_number, make_divisible


# Lite0's block groups; the input of the first is the stem.
class Group(NamedTuple):
    """One block group of Lite0: `repeats` blocks, the first with `stride` and the change of
    channels to `out`."""

    repeats: int
    kernel: int
    stride: int
    expansion: int
    out: int


_GROUPS = [
    Group(repeats=1, kernel=3, stride=1, expansion=1, out=16),
    Group(repeats=2, kernel=3, stride=2, expansion=6, out=24),
    Group(repeats=2, kernel=5, stride=2, expansion=6, out=40),
    Group(repeats=3, kernel=3, stride=2, expansion=6, out=80),
    Group(repeats=3, kernel=5, stride=1, expansion=6, out=112),
    Group(repeats=4, kernel=5, stride=2, expansion=6, out=192),
    Group(repeats=1, kernel=3, stride=1, expansion=6, out=320),
]
# variant -> (width coefficient, depth coefficient, native resolution, classifier dropout)
VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}
STEM = 32
HEAD = 1280
MAX_MULTIPLIER = 4.0


def group_repeats(variant: str, depth: float) -> list[int]:
    """Blocks per group of `variant` after `depth`: the first and last groups never scale."""
    d = VARIANTS[variant][1] * depth
    last = len(_GROUPS) - 1
    return [
        g.repeats if gi in (0, last) else scaled_repeats(g.repeats, d)
        for gi, g in enumerate(_GROUPS)
    ]


def block_specs(variant: str, width: float, depth: float) -> list[BlockSpec]:
    """The blocks of `variant`, channels scaled by `width`, repeats by `depth` (Lite rules)."""
    w = VARIANTS[variant][0] * width
    blocks, cin = [], STEM
    for (_, k, s, e, out), repeats in zip(_GROUPS, group_repeats(variant, depth), strict=True):
        cout = make_divisible(out * w)
        blocks.append(BlockSpec(k, cin * e, cout, 0, "relu6", s))
        blocks += [BlockSpec(k, cout * e, cout, 0, "relu6", 1)] * (repeats - 1)
        cin = cout
    return blocks


@dataclasses.dataclass(frozen=True)
class EfficientNetLiteConfig:
    """The family's knobs: multipliers on the variant's own width and depth coefficients
    (Lite2 at width 1.5 has width coefficient 1.1 * 1.5)."""

    width: float = 1.0
    depth: float = 1.0

    def validate(self) -> EfficientNetLiteConfig:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        check_number("width", self.width, 0.0, MAX_MULTIPLIER)
        check_number("depth", self.depth, 0.0, MAX_MULTIPLIER)
        return self


def classifier_head(variant: str, config: EfficientNetLiteConfig) -> dict:
    """The ImageNet classifier's settings: the unscaled 1280 head conv and the variant's
    dropout."""
    return {"head_conv": HEAD, "dropout": VARIANTS[variant][3]}


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite feature extractor: `variant` is fixed by the encoder's name, `config`
    holds its knobs, `conv` the spatial convs' grouping."""

    variant: str = "lite0"
    config: EfficientNetLiteConfig = EfficientNetLiteConfig()
    output_stride: int = 32
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, ceil(H/s), ceil(W/s), C) features: the stem at 2, then each stride's
        last block (up to the output stride)."""
        x = ConvBNAct(STEM, 3, 2, act="relu6", name="stem")(x, train)
        features = {2: x}
        run_blocks(
            x,
            block_specs(self.variant, self.config.width, self.config.depth),
            stride=2,
            output_stride=self.output_stride,
            conv=self.conv,
            train=train,
            features=features,
        )
        return features
