"""Where StrideFormer's layers, and PP-MobileSeg's AAM and head, live in PaddleSeg `.pdparams`.

`NAMES["paddle"](variant, config)` lists the encoder's `Layer`s (models/encoders/naming.py) as
PaddleSeg's `StrideFormer` backbone names them (`MobileSeg_Tiny` / `MobileSeg_Base`):

- `smb1.conv` the stem (`.c` its conv, `.bn` its BN); stage S's blocks are
  `smbS.blocks.I.{expand_conv, bottleneck_conv, mid_se.conv1 / conv2, linear_conv}`, I counted
  within the stage from 0 (segnas numbers its `blockK` through all stages);
- attention stage T (after MobileNetV3 stage T + 2) holds `transT.transformer_blocks.J`, each
  `attn.{stride_conv.0 (depthwise, bias), stride_conv.1 (BN), to_q, to_k, to_v, dwconv,
  pwconv, proj_encode_row.1, proj_encode_column.1, proj.1, pos_emb_{row,column}{q,k}}` and
  `mlp.{fc1, dwconv (depthwise, bias), fc2}`; segnas numbers them `attnK` through both stages.

The positional embeddings are parameters of their own, `[1, C, 16]` in the file: `Embedding`
layers, which `nas.weights.layout` lays out as segnas's `(16, C)`.

In PaddleSeg the AAM (`inj_module`) is part of the backbone; segnas has it as the `aam`
decoder, so the encoder's table leaves it out and `IGNORED` lists it with the head
(`decode_head`). `decoder(variant)` names the `aam` decoder's layers (paths under segnas's
`decoder`) for a whole released model: `inj_module.embedding_list.N` / `act_embedding_list.N`
are the e / a convs in input order, the ones a variant does not build left out of the count
(AAMSx8 has no e16 and no a8); `decode_head.linear_fuse` the head's depthwise conv + BN,
`decode_head.conv_seg` its classifier. A whole model's file puts `backbone.` before the
backbone's names (`nas.weights.paddle` strips it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from models.encoders import strideformer
from models.encoders.common import scaled_repeats
from models.encoders.naming import Layer, conv_bn


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """A learned parameter tensor of its own: `theirs` is its whole name in the file, `ours`
    its whole path in segnas's encoder (a module's `.../pos_embed`); outside naming.KINDS,
    which lists the kinds of layers."""

    kind: str = "embedding"

    def __post_init__(self) -> None:
        # An embedding is always this one kind; naming.KINDS lists the layer kinds only.
        if self.kind != "embedding":
            raise ValueError(f"kind: got {self.kind!r}; allowed: embedding")


def _cbn(ours: str, theirs: str, depthwise: bool = False) -> list[Layer]:
    """A conv + BN pair named `theirs.c` / `theirs.bn` (Paddle's `ConvBNLayer`, `Conv2DBN`)."""
    return conv_bn(ours, f"{theirs}.c", f"{theirs}.bn", depthwise)


def _attention(ours: str, p: str) -> list[Layer]:
    """One SEA block `ours` (`attnK`) named `p` (`transT.transformer_blocks.J`)."""
    a, pa = f"{ours}/attn", f"{p}.attn"
    layers = [
        Layer(f"{a}/stride_conv", f"{pa}.stride_conv.0", "conv_bias"),
        Layer(f"{a}/stride_bn", f"{pa}.stride_conv.1", "bn"),
    ]
    for name in ("to_q", "to_k", "to_v"):
        layers += _cbn(f"{a}/{name}", f"{pa}.{name}")
    layers += _cbn(f"{a}/dwconv", f"{pa}.dwconv", depthwise=True)
    layers += _cbn(f"{a}/pwconv", f"{pa}.pwconv")
    layers += _cbn(f"{a}/proj_row", f"{pa}.proj_encode_row.1")
    layers += _cbn(f"{a}/proj_col", f"{pa}.proj_encode_column.1")
    layers += _cbn(f"{a}/proj", f"{pa}.proj.1")
    for axis, theirs in (("row", "row"), ("col", "column")):
        for t in ("q", "k"):
            layers.append(
                Embedding(f"{a}/pos_{axis}{t}/pos_embed", f"{pa}.pos_emb_{theirs}{t}.pos_embed")
            )
    layers += _cbn(f"{ours}/fc1", f"{p}.mlp.fc1")
    layers.append(Layer(f"{ours}/mlp_dwconv", f"{p}.mlp.dwconv", "conv_bias"))
    return layers + _cbn(f"{ours}/fc2", f"{p}.mlp.fc2")


def paddle(variant: str, config: strideformer.StrideFormerConfig) -> list[Layer]:
    """The encoder in PaddleSeg's naming (module docstring)."""
    layers = _cbn("stem", "smb1.conv")
    k = 0
    for s, stage in enumerate(strideformer.stage_blocks(variant, config.width, config.depth)):
        for i, b in enumerate(stage):
            k += 1
            ours, p = f"block{k}", f"smb{s + 1}.blocks.{i}"
            layers += _cbn(f"{ours}/expand", f"{p}.expand_conv")
            layers += _cbn(f"{ours}/spatial", f"{p}.bottleneck_conv", depthwise=True)
            if b.se_squeeze:
                layers += [
                    Layer(f"{ours}/se/reduce", f"{p}.mid_se.conv1", "conv_bias"),
                    Layer(f"{ours}/se/expand", f"{p}.mid_se.conv2", "conv_bias"),
                ]
            layers += _cbn(f"{ours}/project", f"{p}.linear_conv")
    k = 0
    for t, depth in enumerate(strideformer.VARIANTS[variant].depths):
        for j in range(scaled_repeats(depth, config.depth)):
            k += 1
            layers += _attention(f"attn{k}", f"trans{t + 1}.transformer_blocks.{j}")
    return layers


# The AAM's e / a convs per decoder variant, in the order `embedding_list` /
# `act_embedding_list` hold them.
_AAM: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "aam": (("embed8", "embed16", "embed32"), ("gate8", "gate16", "gate32")),
    "aamsx8": (("embed8", "embed32"), ("gate16", "gate32")),
}


def decoder(variant: str) -> list[Layer]:
    """The `aam` decoder (`variant` aam or aamsx8, both Table 4 switches on, as released) and
    its head in a whole PP-MobileSeg file's naming, `backbone.` stripped (module docstring)."""
    embeds, gates = _AAM[variant]
    layers = []
    for theirs, ours in (("embedding_list", embeds), ("act_embedding_list", gates)):
        for n, name in enumerate(ours):
            p = f"inj_module.{theirs}.{n}"
            layers += conv_bn(name, f"{p}.conv", f"{p}.bn")
    return layers + [
        Layer("head/dwconv", "decode_head.linear_fuse.conv", "depthwise"),
        Layer("head/bn", "decode_head.linear_fuse.bn", "bn"),
        Layer("head/classify", "decode_head.conv_seg", "conv_bias"),
    ]


NAMES: dict[str, Callable[[str, strideformer.StrideFormerConfig], list[Layer]]] = {
    "paddle": paddle,
}
# PaddleSeg's AAM and head: in a whole model's file, segnas's decoder rather than its encoder.
IGNORED: dict[str, tuple[str, ...]] = {"paddle": ("inj_module.", "decode_head.")}
