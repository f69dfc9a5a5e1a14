"""StrideFormer's PaddleSeg name table: names and Paddle shapes typed from the released
`strideformer.py` / `pp_mobileseg.py`, each landing where segnas keeps that layer."""

from __future__ import annotations

import pytest

from models.encoders import ENCODERS
from models.encoders.naming import Layer
from models.encoders.strideformer_names import Embedding, decoder
from nas.weights import apply, layout

# name -> (the shape PaddleSeg stores, segnas's collection/path), tiny (heads 4: nh_kd 64 / 96,
# dh 128 / 192 for trans1 / trans2; mlp ratios 2 / 4).
TINY = {
    "smb1.conv.c.weight": ((16, 3, 3, 3), "params/stem/conv/kernel"),
    "smb1.conv.bn._variance": ((16,), "batch_stats/stem/bn/var"),
    # the expand conv is there also when the expansion equals the input (16 -> 16)
    "smb1.blocks.0.expand_conv.c.weight": ((16, 16, 1, 1), "params/block1/expand/conv/kernel"),
    "smb1.blocks.0.mid_se.conv1.weight": ((4, 16, 1, 1), "params/block1/se/reduce/kernel"),
    "smb1.blocks.0.mid_se.conv2.bias": ((16,), "params/block1/se/expand/bias"),
    "smb1.blocks.2.bottleneck_conv.c.weight": ((48, 1, 3, 3), "params/block3/spatial/conv/kernel"),
    "smb2.blocks.0.bottleneck_conv.bn.weight": ((96,), "params/block4/spatial/bn/scale"),
    "smb2.blocks.1.mid_se.conv1.weight": ((24, 96, 1, 1), "params/block5/se/reduce/kernel"),
    "smb4.blocks.1.linear_conv.c.weight": ((128, 384, 1, 1), "params/block9/project/conv/kernel"),
    "smb4.blocks.1.linear_conv.bn._mean": ((128,), "batch_stats/block9/project/bn/mean"),
    "trans1.transformer_blocks.0.attn.stride_conv.0.weight": (
        (64, 1, 3, 3),
        "params/attn1/attn/stride_conv/kernel",
    ),
    "trans1.transformer_blocks.0.attn.stride_conv.0.bias": (
        (64,),
        "params/attn1/attn/stride_conv/bias",
    ),
    "trans1.transformer_blocks.1.attn.stride_conv.1.bias": (
        (64,),
        "params/attn2/attn/stride_bn/bias",
    ),
    "trans1.transformer_blocks.0.attn.pos_emb_rowq.pos_embed": (
        (1, 64, 16),
        "params/attn1/attn/pos_rowq/pos_embed",
    ),
    "trans2.transformer_blocks.1.attn.pos_emb_columnk.pos_embed": (
        (1, 96, 16),
        "params/attn4/attn/pos_colk/pos_embed",
    ),
    "trans2.transformer_blocks.0.attn.to_v.c.weight": (
        (192, 128, 1, 1),
        "params/attn3/attn/to_v/conv/kernel",
    ),
    "trans2.transformer_blocks.0.attn.dwconv.c.weight": (
        (384, 1, 3, 3),
        "params/attn3/attn/dwconv/conv/kernel",
    ),
    "trans2.transformer_blocks.0.attn.proj_encode_row.1.c.weight": (
        (192, 192, 1, 1),
        "params/attn3/attn/proj_row/conv/kernel",
    ),
    "trans2.transformer_blocks.0.attn.proj_encode_column.1.bn.weight": (
        (192,),
        "params/attn3/attn/proj_col/bn/scale",
    ),
    "trans2.transformer_blocks.0.attn.proj.1.c.weight": (
        (128, 192, 1, 1),
        "params/attn3/attn/proj/conv/kernel",
    ),
    "trans1.transformer_blocks.1.mlp.fc1.c.weight": (
        (128, 64, 1, 1),
        "params/attn2/fc1/conv/kernel",
    ),
    "trans2.transformer_blocks.1.mlp.dwconv.weight": (
        (512, 1, 3, 3),
        "params/attn4/mlp_dwconv/kernel",
    ),
    "trans2.transformer_blocks.1.mlp.dwconv.bias": ((512,), "params/attn4/mlp_dwconv/bias"),
    "trans2.transformer_blocks.1.mlp.fc2.c.weight": (
        (128, 512, 1, 1),
        "params/attn4/fc2/conv/kernel",
    ),
}
# base: stage 4 is 5x5 and 768 wide, attention 128 / 192 wide with 8 heads, 3 + 3 blocks.
BASE = {
    "smb4.blocks.0.bottleneck_conv.c.weight": ((768, 1, 5, 5), "params/block8/spatial/conv/kernel"),
    "smb4.blocks.0.mid_se.conv1.weight": ((192, 768, 1, 1), "params/block8/se/reduce/kernel"),
    "trans1.transformer_blocks.2.attn.to_q.c.weight": (
        (128, 128, 1, 1),
        "params/attn3/attn/to_q/conv/kernel",
    ),
    "trans2.transformer_blocks.2.attn.pos_emb_rowk.pos_embed": (
        (1, 192, 16),
        "params/attn6/attn/pos_rowk/pos_embed",
    ),
    "trans2.transformer_blocks.2.attn.to_v.c.weight": (
        (384, 192, 1, 1),
        "params/attn6/attn/to_v/conv/kernel",
    ),
}
# Tensors per encoder, counted by hand: stem 5; a block 15 (+ 4 with SE; 7 of 9 blocks have
# one): 168; an attention block 62 (stride conv 2 + BN 4, 8 conv + BN pairs 40, 4 embeddings,
# the MLP's depthwise conv 2): tiny 4 of them, base 6.
COUNTS = {"strideformer_tiny": 416, "strideformer_base": 540}


def _paddle_shape(path: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    if path.endswith("pos_embed"):
        return (1, shape[1], shape[0])
    if len(shape) == 4:
        h, w, i, o = shape
        return (o, i, h, w)
    return shape


def _targets(encoder: str) -> dict:
    fam = ENCODERS[encoder]
    return layout.targets(fam.names["paddle"](fam.fixed["variant"], fam.config()), "paddle")


@pytest.mark.parametrize(
    ("encoder", "pinned"), [("strideformer_tiny", TINY), ("strideformer_base", BASE)]
)
def test_pinned_names_shapes_and_places(encoder: str, pinned: dict) -> None:
    targets = _targets(encoder)
    shapes = apply._shapes(encoder, ENCODERS[encoder].config(), apply.ConvSpec())
    assert len(targets) == COUNTS[encoder]
    # the table covers every encoder variable once
    assert sorted((t.collection, t.path) for t in targets.values()) == sorted(shapes)
    for name, (shape, where) in pinned.items():
        t = targets[name]
        assert f"{t.collection}/{t.path}" == where, name
        assert _paddle_shape(t.path, shapes[(t.collection, t.path)]) == shape, name


def test_decoder_tables() -> None:
    def names(variant: str) -> list[tuple[str, str, str]]:
        return [(x.ours, x.theirs, x.kind) for x in decoder(variant) if x.kind != "bn"]

    e, a = "inj_module.embedding_list", "inj_module.act_embedding_list"
    head = [
        ("head/dwconv", "decode_head.linear_fuse.conv", "depthwise"),
        ("head/classify", "decode_head.conv_seg", "conv_bias"),
    ]
    assert (
        names("aam")
        == [
            ("embed8/conv", f"{e}.0.conv", "conv"),
            ("embed16/conv", f"{e}.1.conv", "conv"),
            ("embed32/conv", f"{e}.2.conv", "conv"),
            ("gate8/conv", f"{a}.0.conv", "conv"),
            ("gate16/conv", f"{a}.1.conv", "conv"),
            ("gate32/conv", f"{a}.2.conv", "conv"),
        ]
        + head
    )
    # AAMSx8 builds no e16 and no a8, and PaddleSeg's lists skip them
    assert (
        names("aamsx8")
        == [
            ("embed8/conv", f"{e}.0.conv", "conv"),
            ("embed32/conv", f"{e}.1.conv", "conv"),
            ("gate16/conv", f"{a}.0.conv", "conv"),
            ("gate32/conv", f"{a}.1.conv", "conv"),
        ]
        + head
    )
    targets = layout.targets(decoder("aam"), "paddle")
    assert targets["decode_head.linear_fuse.bn._variance"].path == "head/bn/var"
    assert len(targets) == 6 * 5 + 1 + 4 + 2


def test_embedding_kind() -> None:
    e = Embedding("a/pos_embed", "x.pos_embed")
    assert isinstance(e, Layer) and e.kind == "embedding"
    with pytest.raises(ValueError, match=r"^kind: got 'conv'; allowed: embedding$"):
        Embedding("a", "b", "conv")
