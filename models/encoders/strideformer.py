"""StrideFormer (PP-MobileSeg's backbone), tiny and base, as in the released PaddleSeg code.

Four stages of MobileNetV3 blocks (a 3x3/2 stem conv 3 -> 16 + BN + hard-swish first), the
last two each followed by strided SEA attention blocks (`models/encoders/sea_attention.py`).
Features: 1/2 the stem, 1/4 stage 1, 1/8 stage 2, 1/16 stage 3 + its attention blocks, 1/32
stage 4 + its attention blocks (the three the AAM decoder fuses).

The MobileNetV3 block differs from torchvision's (`models/layers.InvertedResidual`): its 1x1
expand conv is always there (also when the expansion equals the input), the SE squeezes to
C // 4 with no rounding, and its gate is Paddle's hard-sigmoid clip(0.2 x + 0.5, 0, 1). BN
uses Paddle's momentum 0.9 and epsilon 1e-5. Convs pad like TF "SAME", as every segnas conv
(the reference pads symmetrically: same shapes and parameters, stride-2 outputs sampled half
a pixel apart, so Paddle weights load exactly but outputs are not bit-equal).

Knobs: `width` multiplies every channel count (MobileNetV3 rows and attention widths, through
`make_divisible(c * width, 8)`; the SE squeeze, key dims and heads follow the reference's
rules); `depth` multiplies the blocks per stage (`ceil(depth * n)`, at least one), MobileNetV3
rows as the other families do and attention blocks alike. Width 1 and depth 1 are the released
models. Output stride 16 or 8 runs stage 4 (and 3) at stride 1, dilated, as the other families.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import numpy as np

from models.encoders.common import BlockSpec, scale_repeats, scaled_repeats, stride_schedule
from models.encoders.mobilenet_v3 import Row
from models.encoders.sea_attention import BN_EPSILON, BN_MOMENTUM, SeaBlock
from models.layers import ConvBNAct, ConvSpec, SqueezeExcite, check_number, make_divisible


def _rows(*rows: tuple) -> list[Row]:
    return [Row(*r) for r in rows]


@dataclasses.dataclass(frozen=True)
class Variant:
    """A StrideFormer size: MobileNetV3 stages, attention widths, depths and heads."""

    stages: tuple[list[Row], ...]  # the attention blocks' width is their stage's output
    depths: tuple[int, int]  # attention blocks after stages 3 and 4
    heads: int
    key_dims: tuple[int, int] = (16, 24)
    mlp_ratios: tuple[int, int] = (2, 4)
    attn_ratio: int = 2
    drop_path: float = 0.1


VARIANTS: dict[str, Variant] = {
    "base": Variant(
        (
            _rows(
                (3, 16, 16, True, "relu", 1),
                (3, 64, 32, False, "relu", 2),
                (3, 96, 32, False, "relu", 1),
            ),
            _rows((5, 128, 64, True, "hswish", 2), (5, 240, 64, True, "hswish", 1)),
            _rows((5, 384, 128, True, "hswish", 2), (5, 384, 128, True, "hswish", 1)),
            _rows((5, 768, 192, True, "hswish", 2), (5, 768, 192, True, "hswish", 1)),
        ),
        depths=(3, 3),
        heads=8,
    ),
    "tiny": Variant(
        (
            _rows(
                (3, 16, 16, True, "relu", 1),
                (3, 64, 32, False, "relu", 2),
                (3, 48, 24, False, "relu", 1),
            ),
            _rows((5, 96, 32, True, "hswish", 2), (5, 96, 32, True, "hswish", 1)),
            _rows((5, 160, 64, True, "hswish", 2), (5, 160, 64, True, "hswish", 1)),
            _rows((3, 384, 128, True, "hswish", 2), (3, 384, 128, True, "hswish", 1)),
        ),
        depths=(2, 2),
        heads=4,
    ),
}
MAX_MULTIPLIER = 4.0
STEM = 16


@dataclasses.dataclass(frozen=True)
class StrideFormerConfig:
    """The family's knobs: channel (`width`) and block-count (`depth`) multipliers."""

    width: float = 1.0
    depth: float = 1.0

    def validate(self) -> StrideFormerConfig:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        check_number("width", self.width, 0.0, MAX_MULTIPLIER)
        check_number("depth", self.depth, 0.0, MAX_MULTIPLIER)
        return self


def stage_blocks(variant: str, width: float, depth: float) -> list[list[BlockSpec]]:
    """Per stage, its MobileNetV3 blocks after the multipliers (SE squeeze = expanded // 4)."""
    out = []
    for rows in VARIANTS[variant].stages:
        specs = [
            [
                BlockSpec(
                    r.kernel,
                    make_divisible(r.expanded * width),
                    make_divisible(r.out * width),
                    make_divisible(r.expanded * width) // 4 if r.se else 0,
                    r.act,
                    r.stride,
                )
                for r in rows
            ]
        ]
        out.append(scale_repeats(specs, depth))
    return out


class PaddleMV3Block(nn.Module):
    """PP-MobileSeg's MobileNetV3 block: 1x1 expand (always) -> k x k spatial -> [SE] -> 1x1
    project, the identity added at stride 1 with unchanged channels."""

    spec: BlockSpec
    stride: int = 1
    dilation: int = 1
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H/stride, W/stride, out)."""
        b, bn = self.spec, {"bn_momentum": BN_MOMENTUM, "bn_epsilon": BN_EPSILON}
        inp = x
        x = ConvBNAct(b.expanded, act=b.act, name="expand", **bn)(x, train)
        x = ConvBNAct(
            b.expanded,
            b.kernel,
            self.stride,
            self.dilation,
            self.conv.groups(b.expanded),
            act=b.act,
            name="spatial",
            **bn,
        )(x, train)
        if b.se_squeeze:
            x = SqueezeExcite(b.se_squeeze, "paddle_hard_sigmoid", name="se")(x)
        x = ConvBNAct(b.out, act="none", name="project", **bn)(x, train)
        return x + inp if self.stride == 1 and inp.shape[-1] == b.out else x


class StrideFormer(nn.Module):
    """StrideFormer feature extractor (module docstring); `variant` is fixed by the encoder's
    name (`strideformer_tiny`, `strideformer_base`)."""

    variant: str = "tiny"
    config: StrideFormerConfig = StrideFormerConfig()
    output_stride: int = 32
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, ceil(H/s), ceil(W/s), C) features, s in 2, 4, 8, 16, 32 (up to the
        output stride: deeper stages overwrite the feature at their stride)."""
        v, width, depth = VARIANTS[self.variant], self.config.width, self.config.depth
        stages = stage_blocks(self.variant, width, depth)
        bn = {"bn_momentum": BN_MOMENTUM, "bn_epsilon": BN_EPSILON}
        x = ConvBNAct(make_divisible(STEM * width), 3, 2, act="hswish", name="stem", **bn)(x, train)
        features, stride, index, attn_index = {2: x}, 2, 0, 0
        flat = [b for stage in stages for b in stage]
        schedule = iter(
            stride_schedule([b.stride for b in flat], stride=2, output_stride=self.output_stride)
        )
        for s, stage in enumerate(stages):
            for block in stage:
                step, dilation = next(schedule)
                index += 1
                x = PaddleMV3Block(block, step, dilation, self.conv, name=f"block{index}")(x, train)
                stride *= step
            t = s - (len(stages) - len(v.depths))  # attention stage index, if any
            if t >= 0:
                n = scaled_repeats(v.depths[t], depth)
                for rate in np.linspace(0.0, v.drop_path, n).tolist():
                    attn_index += 1
                    x = SeaBlock(
                        x.shape[-1],
                        v.key_dims[t],
                        v.heads,
                        v.mlp_ratios[t],
                        rate,
                        v.attn_ratio,
                        name=f"attn{attn_index}",
                    )(x, train)
            features[stride] = x
        return features
