"""Importing PaddleSeg `.pdparams` files (StrideFormer, PP-MobileSeg) without paddle: every
encoder variable filled, layouts converted as checked by hand, a whole model's AAM and head
filled into the `aam` decoder, and each bad file one clear line."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from models.encoders import ENCODERS
from models.encoders.strideformer_names import decoder
from nas.errors import UserError
from nas.space.build import build_model
from nas.space.presets import PRESETS
from nas.weights import apply, layout, paddle
from nas.weights.apply import load, with_pretrained
from nas.weights.readers import read

TINY = PRESETS["pp_mobileseg_tiny"]
# Parameters (BN statistics excluded): the whole model's 1,492,298 less the decoder's, by hand:
# AAM 2 * (32 + 64 + 128) * 256 + 6 * 512 = 117,760; head 256 + 512 + 256 * 150 + 150 = 39,318.
TINY_ENCODER_PARAMS = 1_492_298 - 117_760 - 39_318


def _paddle_shape(path: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    # The inverse of the layouts, written out here rather than taken from nas.weights.layout.
    if path.endswith("pos_embed"):
        return (1, shape[1], shape[0])
    if len(shape) == 4:
        h, w, i, o = shape
        return (o, i, h, w)
    return shape


def _fake(targets: dict, shapes: dict, rng: np.random.Generator, prefix: str = "") -> dict:
    return {
        prefix + n: rng.normal(0, 1, _paddle_shape(t.path, shapes[(t.collection, t.path)])).astype(
            np.float32
        )
        for n, t in targets.items()
    }


@functools.lru_cache(maxsize=4)
def _model(arch) -> dict:
    return jax.eval_shape(build_model(arch).init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))


def _model_shapes(arch) -> dict:
    v = _model(arch)
    return {
        tuple(k.split("/")[:1]) + ("/".join(k.split("/")[2:]),): s.shape
        for k, s in traverse_util.flatten_dict(v, sep="/").items()
        if k.split("/")[1] == "decoder"
    }


def fake_file(arch=TINY, whole: bool = True, classes: int = 150, seed: int = 0) -> dict:
    """A PP-MobileSeg file of `arch`'s encoder (and, `whole`, its AAM + head for `classes`)."""
    name = arch.encoder.name
    fam = ENCODERS[name]
    rng = np.random.default_rng(seed)
    enc = layout.targets(fam.names["paddle"](fam.fixed["variant"], fam.config()), "paddle")
    out = _fake(enc, apply._shapes(name, fam.config(), apply.ConvSpec()), rng, "backbone." * whole)
    out["StructuredToParameterName@@"] = {"backbone.smb1.conv.c.weight": "conv2d_0.w_0"}
    if whole:
        dec = layout.targets(decoder(arch.decoder.config.variant), "paddle")
        shapes = _model_shapes(arch)
        t = _fake(dec, shapes, rng)
        t["decode_head.conv_seg.weight"] = t["decode_head.conv_seg.weight"][:classes]
        t["decode_head.conv_seg.bias"] = t["decode_head.conv_seg.bias"][:classes]
        out.update({("backbone." + n if n.startswith("inj") else n): a for n, a in t.items()})
    return out


def _write(tmp_path: Path, tensors: dict) -> str:
    p = tmp_path / "model.pdparams"
    p.write_bytes(pickle.dumps(tensors, protocol=4))  # paddle.save's default protocol
    return str(p)


def _flat(tree: dict) -> dict:
    return {
        f"{c}/{k}": v
        for c, t in tree.items()
        for k, v in traverse_util.flatten_dict(t, sep="/").items()
    }


def _hwio(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:
        return a[0].T
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a


def test_every_encoder_variable_filled_once(tmp_path: Path) -> None:
    tensors = fake_file(whole=False)
    p = load(_write(tmp_path, tensors), "paddle", TINY)
    flat = _flat(p.variables)
    assert sum(v.size for k, v in flat.items() if k.startswith("params/")) == TINY_ENCODER_PARAMS
    by_value = {_hwio(v).tobytes(): k for k, v in tensors.items() if isinstance(v, np.ndarray)}
    used = [by_value.get(v.tobytes()) for v in flat.values()]
    assert None not in used and len(set(used)) == len(flat) == 416
    assert p.decoder is None  # a backbone file fills no decoder


def test_layouts_by_hand(tmp_path: Path) -> None:
    t = fake_file(whole=False)
    t["smb1.conv.c.weight"] = np.arange(16 * 3 * 3 * 3, dtype=np.float32).reshape(16, 3, 3, 3)
    pos = "trans1.transformer_blocks.0.attn.pos_emb_rowq.pos_embed"
    t[pos] = np.arange(64 * 16, dtype=np.float32).reshape(1, 64, 16)
    t["smb1.conv.bn._variance"] = np.full(16, 7.0, np.float32)
    v = load(_write(tmp_path, t), "paddle", TINY).variables
    # Paddle's [out 5, in 0, kh 1, kw 2] is element 5*27 + 0*9 + 1*3 + 2 = 140
    assert v["params"]["stem"]["conv"]["kernel"][1, 2, 0, 5] == 140.0
    # [0, channel 10, position 3] is 10*16 + 3 = 163, at (position 3, channel 10)
    assert v["params"]["attn1"]["attn"]["pos_rowq"]["pos_embed"][3, 10] == 163.0
    assert v["params"]["attn1"]["attn"]["pos_rowq"]["pos_embed"].shape == (16, 64)
    assert v["batch_stats"]["stem"]["bn"]["var"].tolist() == [7.0] * 16


def _error(tmp_path: Path, tensors: dict, arch=TINY) -> str:
    with pytest.raises(UserError) as e:
        load(_write(tmp_path, tensors), "paddle", arch)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_missing_tensor(tmp_path: Path) -> None:
    t = fake_file(whole=False)
    del t["trans2.transformer_blocks.1.attn.pos_emb_columnk.pos_embed"]
    assert _error(tmp_path, t).endswith(
        "does not fit encoder strideformer_tiny (paddle naming): 1 missing "
        "(trans2.transformer_blocks.1.attn.pos_emb_columnk.pos_embed); 0 unmapped (none)"
    )


@pytest.mark.slow  # ~15 s: the importer first tries the other widths, one encoder trace each
def test_misshapen_tensor(tmp_path: Path) -> None:
    t = fake_file(whole=False)
    t["smb2.blocks.0.expand_conv.c.weight"] = np.zeros((96, 24, 3, 3), np.float32)
    assert _error(tmp_path, t).endswith(
        ": tensor 'smb2.blocks.0.expand_conv.c.weight' has shape (96, 24, 3, 3), (3, 3, 24, 96) "
        "in Flax's layout; the encoder's block4/expand/conv/kernel needs (1, 1, 24, 96)"
    )


def test_tiny_file_into_base_names_the_family(tmp_path: Path) -> None:
    msg = _error(tmp_path, fake_file(whole=False), PRESETS["pp_mobileseg_base"])
    assert msg.endswith(
        "holds strideformer_tiny weights, not strideformer_base's; allowed: a strideformer_base "
        "file, or arch.encoder.name 'strideformer_tiny'"
    )


def test_whole_model_fills_the_decoder(tmp_path: Path) -> None:
    t = fake_file()
    p = load(_write(tmp_path, t), "paddle", TINY)
    dec = _flat(p.decoder)
    assert len(dec) == 37  # 6 conv + BN pairs (5 tensors each), the head's 7
    e16 = t["backbone.inj_module.embedding_list.1.conv.weight"]
    assert e16.shape == (256, 64, 1, 1)
    np.testing.assert_array_equal(dec["params/embed16/conv/kernel"], e16.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(
        dec["batch_stats/gate32/bn/mean"], t["backbone.inj_module.act_embedding_list.2.bn._mean"]
    )
    np.testing.assert_array_equal(dec["params/head/classify/bias"], t["decode_head.conv_seg.bias"])
    assert dec["params/head/dwconv/kernel"].shape == (1, 1, 1, 256)
    # into a model's variables: the decoder's leaves replaced, the encoder's too
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), _model(TINY))
    v = with_pretrained(zeros, p)
    np.testing.assert_array_equal(
        v["params"]["decoder"]["head"]["classify"]["bias"], t["decode_head.conv_seg.bias"]
    )
    np.testing.assert_array_equal(
        v["params"]["encoder"]["block1"]["se"]["reduce"]["bias"],
        t["backbone.smb1.blocks.0.mid_se.conv1.bias"],
    )


def test_other_class_count_keeps_a_fresh_classifier(tmp_path: Path) -> None:
    p = load(_write(tmp_path, fake_file(classes=19)), "paddle", TINY)
    assert "classify" not in p.decoder["params"]["head"]
    assert sorted(p.decoder["params"]["head"]) == ["bn", "dwconv"]


def test_decoder_that_is_not_the_released_one(tmp_path: Path) -> None:
    t = fake_file()
    arch = TINY.with_values({"decoder.variant": "aamsx8"})
    assert _error(tmp_path, t, arch).startswith(
        "arch.decoder.variant: got 'aamsx8', but train.init_from.path: "
    )
    assert _error(tmp_path, t, arch).endswith(
        "holds the aam decoder; allowed: 'aam', or arch.decoder.name other than aam (encoder only)"
    )
    arch = TINY.with_values({"decoder.ensemble_vote": False})
    assert _error(tmp_path, t, arch).startswith("arch.decoder.ensemble_vote: got false, but ")
    del t["backbone.inj_module.act_embedding_list.1.bn.weight"]
    assert _error(tmp_path, t).endswith(
        "does not fit decoder aam (aam, paddle naming): 1 missing "
        "(inj_module.act_embedding_list.1.bn.weight); 0 unmapped (none)"
    )
    t = fake_file()
    t["decode_head.linear_fuse.conv.weight"] = np.zeros((256, 2, 1, 1), np.float32)
    assert _error(tmp_path, t).endswith(
        ": tensor 'decode_head.linear_fuse.conv.weight' has shape (256, 2, 1, 1), (1, 1, 2, 256) "
        "in Flax's layout; the decoder's head/dwconv/kernel needs (1, 1, 1, 256)"
    )
    # with another decoder, the AAM and head are not the model's: only the encoder is filled
    unet = TINY.with_values({"decoder.name": "unet"})
    assert load(_write(tmp_path, fake_file()), "paddle", unet).decoder is None


def test_unpickler_refuses_other_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    p = tmp_path / "evil.pdparams"
    p.write_bytes(pickle.dumps({"smb1.conv.c.weight": Evil()}))
    with pytest.raises(UserError, match=r"could not be read as paddle: pathlib.*not a numpy"):
        read(str(p), "paddle", "train.init_from.path")
    assert not marker.exists()
    assert paddle.file_variant({"inj_module.embedding_list.1.conv.weight": 0}) == "aamsx8"
