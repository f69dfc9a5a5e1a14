"""What the inverted-residual encoder families share: a block spec and the loop that runs
blocks to an output stride.

**Output stride.** Walking the network's units with the running stride, a unit whose stride
s > 1 would take the running stride beyond the output stride runs at stride 1 instead, and
the dilation of the spatial convs from there on is multiplied by s; so every later spatial
conv is dilated by (network stride / output stride): 2 for the stage at 1/32 at output stride
16; 2 for the stage at 1/16 and 4 for the one at 1/32 at output stride 8. Shapes, parameters
and MACs do not depend on the dilation, only the receptive field does. `stride_schedule`
computes the rule; the two reference conventions differ in one conv per stage, the one of the
unit that stopped striding:

- `dilate_first=True`, torchvision's (`mobilenet_v3_large(dilated=True)`: blocks 13-15 all at
  dilation 2): that unit's spatial conv already uses the multiplied dilation. `run_blocks`
  uses it, for MobileNetV3 (whose LR-ASPP preset and weights are torchvision's) and
  EfficientNet-Lite (whose reference has no output stride; kept as it was so existing
  latency-table signatures stay valid).
- `dilate_first=False`, DeepLab's (TF-slim `mobilenet_base` and seed 001's ShuffleNetV2, where
  the rate is raised *after* the unit that stops striding): that unit keeps the dilation it
  had; the multiplied one starts with the next unit. This is the issue's wording ("its later
  spatial convs are dilated").

**Input sizes.** Every conv pads like TF "SAME" (flax's `padding="SAME"`: total padding
max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0), the odd pixel at the end), so a stride-2
conv maps n to ceil(n / 2) and the feature at stride s is ceil(H / s) x ceil(W / s) for any
input size: 360 x 640 gives 23 x 40 at 1/16, as TF's reference code does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

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


def stride_schedule(
    strides: Sequence[int], *, stride: int, output_stride: int, dilate_first: bool = True
) -> list[tuple[int, int]]:
    """(stride, dilation) for each unit of nominal `strides`, entered at running stride
    `stride`, so that the running stride never exceeds `output_stride` (module docstring;
    `dilate_first` picks the convention for the unit that stops striding)."""
    schedule, dilation = [], 1
    for s in strides:
        if s > 1 and stride * s > output_stride:
            before, dilation = dilation, dilation * s
            schedule.append((1, dilation if dilate_first else before))
        else:
            stride *= s
            schedule.append((s, dilation))
    return schedule


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
    """Applies `blocks` (named block1, block2, ...) inside the caller's compact scope, strided
    and dilated by `stride_schedule` (torchvision's convention, `dilate_first=True`).

    `stride` is the input's stride; `features[s]` ends as the last feature seen at stride s.
    Returns (x, final stride, final dilation).
    """
    schedule = stride_schedule(
        [b.stride for b in blocks], stride=stride, output_stride=output_stride
    )
    dilation = 1
    for i, (b, (s, dilation)) in enumerate(zip(blocks, schedule, strict=True), start=1):
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
