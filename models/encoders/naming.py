"""How an encoder's layers are named in other frameworks' weight files: the shared vocabulary.

A family's name table (`<family>_names.py`, beside its module) lists `Layer`s: where a layer
lives in segnas's encoder (`ours`, a module path such as `block3/spatial/conv`), its name prefix
in a file (`theirs`, e.g. `blocks.1.0.conv_dw`) and its `kind`, which says which tensors it
holds. How each kind's tensors are named and laid out in each format is `nas.weights.layout`'s
job, the one place that knows about OIHW or Keras's depthwise kernels; a table only names.
"""

from __future__ import annotations

import dataclasses

# conv: a bias-free kernel; depthwise: a bias-free kernel with one channel per group (Keras
# stores those in its own layout); conv_bias: kernel + bias (the SE convs); bn: BatchNorm's
# scale, bias and running mean / variance; dense: a fully connected kernel + bias.
KINDS: tuple[str, ...] = ("conv", "depthwise", "conv_bias", "bn", "dense")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of segnas's encoder and its name in a weight file."""

    ours: str
    theirs: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")


def conv_bn(ours: str, conv: str, bn: str, depthwise: bool = False) -> list[Layer]:
    """The two layers of a segnas `ConvBNAct` named `ours`: its conv as `conv`, its BN as `bn`."""
    kind = "depthwise" if depthwise else "conv"
    return [Layer(f"{ours}/conv", conv, kind), Layer(f"{ours}/bn", bn, "bn")]


@dataclasses.dataclass(frozen=True)
class BlockNames:
    """One inverted-residual block as the name tables see it: its segnas module name
    (`block7`), whether it has an expand conv and an SE, and its place in the reference's
    stage list (`stage`, `index` within the stage, both from 0)."""

    ours: str
    expand: bool
    se: bool
    stage: int
    index: int


def block_names(
    stage_sizes: list[int], expanded: list[int], inputs: list[int], se: list[bool]
) -> list[BlockNames]:
    """The blocks of an encoder whose stages hold `stage_sizes` blocks; block i has an expand
    conv when `expanded[i] != inputs[i]` (as `models.layers.InvertedResidual` decides)."""
    out, i = [], 0
    for stage, size in enumerate(stage_sizes):
        for index in range(size):
            out.append(BlockNames(f"block{i + 1}", expanded[i] != inputs[i], se[i], stage, index))
            i += 1
    if i != len(expanded):
        raise ValueError(
            f"stage sizes {stage_sizes} hold {i} blocks; the encoder has {len(expanded)}"
        )
    return out


def timm_block(b: BlockNames, prefix: str = "blocks") -> list[Layer]:
    """A block in timm's EfficientNet / MobileNetV3 naming: `DepthwiseSeparableConv` (conv_dw,
    bn1, se, conv_pw, bn2) without an expand conv, else `InvertedResidual` (conv_pw, bn1,
    conv_dw, bn2, se, conv_pwl, bn3)."""
    p = f"{prefix}.{b.stage}.{b.index}"
    if b.expand:
        layers = conv_bn(f"{b.ours}/expand", f"{p}.conv_pw", f"{p}.bn1")
        layers += conv_bn(f"{b.ours}/spatial", f"{p}.conv_dw", f"{p}.bn2", depthwise=True)
        project = conv_bn(f"{b.ours}/project", f"{p}.conv_pwl", f"{p}.bn3")
    else:
        layers = conv_bn(f"{b.ours}/spatial", f"{p}.conv_dw", f"{p}.bn1", depthwise=True)
        project = conv_bn(f"{b.ours}/project", f"{p}.conv_pw", f"{p}.bn2")
    if b.se:
        layers += [
            Layer(f"{b.ours}/se/reduce", f"{p}.se.conv_reduce", "conv_bias"),
            Layer(f"{b.ours}/se/expand", f"{p}.se.conv_expand", "conv_bias"),
        ]
    return layers + project
