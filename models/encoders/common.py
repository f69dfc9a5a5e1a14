"""What both encoder families share: a block spec and the loop that runs blocks to an output stride.

Output stride follows the DeepLab / torchvision convention: a stride-2 block that would take
the feature map below 1/output_stride runs at stride 1 instead, and it and every later block
use a doubled dilation, so the receptive field is kept while the resolution is.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from models.layers import ConvSpec, InvertedResidual


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One inverted-residual block as in the reference tables (channels already scaled)."""

    kernel: int
    expanded: int
    out: int
    se_squeeze: int  # 0 for none
    act: str
    stride: int


def scaled_repeats(n: int, depth: float) -> int:
    """ceil(depth * n) blocks, at least one: a stage's block count after the depth multiplier."""
    return max(1, math.ceil(depth * n - 1e-9))


def scale_repeats(groups: list[list[BlockSpec]], depth: float) -> list[BlockSpec]:
    """Flattens block groups after the depth multiplier: ceil(depth * n) blocks per group.

    Extra blocks repeat the group's last (stride-1, channel-preserving) block; fewer keep the
    group's first blocks, so the stride and channel change at the head of a group survive.
    """
    blocks = []
    for group in groups:
        n = scaled_repeats(len(group), depth)
        tail = dataclasses.replace(group[-1], stride=1)
        blocks += group[:n] + [tail] * (n - len(group))
    return blocks


def run_blocks(
    x: jax.Array,
    blocks: list[BlockSpec],
    *,
    stride: int,
    output_stride: int,
    conv: ConvSpec,
    train: bool,
    features: dict[int, jax.Array],
) -> tuple[jax.Array, int, int]:
    """Applies `blocks` (named block1, block2, ...) inside the caller's compact scope.

    `stride` is the input's stride; `features[s]` ends as the last feature seen at stride s.
    Returns (x, final stride, final dilation).
    """
    dilation = 1
    for i, b in enumerate(blocks, start=1):
        s = b.stride
        if s > 1 and stride * s > output_stride:
            dilation *= s
            s = 1
        stride *= s
        x = InvertedResidual(
            b.expanded,
            b.out,
            b.kernel,
            s,
            dilation,
            b.se_squeeze,
            b.act,
            conv,
            name=f"block{i}",
        )(x, train)
        features[stride] = x
    return x, stride, dilation
