"""StrideFormer + AAM (seed 002): exact parameter counts against the released PaddleSeg code's
own breakdown (shared/notes/reference_architectures.md §1), shapes, the positional-embedding
resize by hand, Table 4's switches, the fixed output stride and the bad-input errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.encoders.sea_attention import linear_resize_matrix
from nas.cost import abstract_variables
from nas.space.arch import Arch
from nas.space.presets import preset

# Per part, counted from the reference code at 150 classes (stage 1 includes the stem).
BREAKDOWN = {
    "pp_mobileseg_base": {
        "stage1": 12_788,
        "stage2": 91_388,
        "stage3": 343_232,
        "stage4": 1_177_728,
        "trans1": 1_145_088,
        "trans2": 2_984_832,
        "injection": 149_504,
    },
    "pp_mobileseg_tiny": {
        "stage1": 8_692,
        "stage2": 26_672,
        "stage3": 71_376,
        "stage4": 330_944,
        "trans1": 201_472,
        "trans2": 696_064,
        "injection": 117_760,
    },
}
# Positional embeddings, BN gamma + beta, conv biases (same source).
KINDS = {
    "pp_mobileseg_base": (61_440, 52_544, 7_542),
    "pp_mobileseg_tiny": (20_480, 23_600, 3_434),
}
HEAD_150 = 39_318  # 256 depthwise 1x1 + BN 512 + 256 x 150 + 150
BLOCKS = {"pp_mobileseg_base": (3, 2, 2, 2), "pp_mobileseg_tiny": (3, 2, 2, 2)}
ATTN = {"pp_mobileseg_base": (3, 3), "pp_mobileseg_tiny": (2, 2)}


def _params(arch: Arch) -> dict:
    return abstract_variables(arch)["params"]


def _size(tree) -> int:
    return sum(math.prod(v.shape) for v in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", list(BREAKDOWN))
def test_parameter_breakdown_equals_the_reference(name):
    params = _params(preset(name))
    enc, dec = params["encoder"], params["decoder"]
    want = BREAKDOWN[name]
    first = 1
    for stage, n in enumerate(BLOCKS[name], start=1):
        names = [f"block{i}" for i in range(first, first + n)] + (["stem"] if stage == 1 else [])
        assert sum(_size(enc[b]) for b in names) == want[f"stage{stage}"], stage
        first += n
    first = 1
    for t, n in enumerate(ATTN[name], start=1):
        got = sum(_size(enc[f"attn{i}"]) for i in range(first, first + n))
        assert got == want[f"trans{t}"], t
        first += n
    assert _size({k: v for k, v in dec.items() if k != "head"}) == want["injection"]
    assert _size(dec["head"]) == HEAD_150
    assert _size(params) == sum(want.values()) + HEAD_150


@pytest.mark.parametrize("name", list(KINDS))
def test_parameter_kinds_equal_the_reference(name):
    flat = jax.tree_util.tree_flatten_with_path(_params(preset(name)))[0]
    by_leaf: dict[str, int] = {}
    for path, v in flat:
        leaf = jax.tree_util.keystr(path[-1:], simple=True)
        parent = jax.tree_util.keystr(path[-2:-1], simple=True)
        kind = "bn" if parent.startswith("bn") or parent.endswith("_bn") else leaf
        by_leaf[kind] = by_leaf.get(kind, 0) + math.prod(v.shape)
    assert (by_leaf["pos_embed"], by_leaf["bn"], by_leaf["bias"]) == KINDS[name]


def test_features_and_logits_shapes_at_512():
    from nas.space.build import build_model

    arch = preset("pp_mobileseg_tiny")
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((1, 512, 512, 3), jnp.float32)
    v = abstract_variables(arch)
    logits, aux = jax.eval_shape(lambda v, x: model.apply(v, x), v, x)
    assert logits.shape == (1, 512, 512, 150)
    assert aux["stride_8"].shape == (1, 64, 64, 32)
    assert aux["stride_16"].shape == (1, 32, 32, 64)
    assert aux["stride_32"].shape == (1, 16, 16, 128)
    assert aux["low_logits"].shape == (1, 32, 32, 150)  # AAM fuses at 1/16
    base = preset("pp_mobileseg_base")
    _, aux = jax.eval_shape(lambda v, x: build_model(base).apply(v, x), abstract_variables(base), x)
    assert aux["low_logits"].shape == (1, 64, 64, 150)  # AAMSx8 at 1/8
    assert aux["stride_32"].shape == (1, 16, 16, 192)


def test_positional_embedding_resize_by_hand():
    np.testing.assert_allclose(linear_resize_matrix(4, 4), np.eye(4))
    # 4 -> 2: output j samples input 2j + 0.5, the mean of a pair (no antialiasing needed).
    np.testing.assert_allclose(linear_resize_matrix(4, 2), [[0.5, 0], [0.5, 0], [0, 0.5], [0, 0.5]])
    # 2 -> 4: samples -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
    np.testing.assert_allclose(linear_resize_matrix(2, 4), [[1, 0.75, 0.25, 0], [0, 0.25, 0.75, 1]])


def _aam(**knobs) -> Arch:
    return Arch.from_dict(
        {
            "encoder": {"name": "strideformer_base"},
            "decoder": {"name": "aam", "variant": "aamsx8", **knobs},
            "resolution": [512, 512],
            "num_classes": 150,
        }
    )


def test_table4_switches_change_parameters_by_hand_counts():
    full = _size(_params(_aam()))
    assert full == 5_943_878
    # no final semantics: the e32 conv 192 -> 256 + BN goes (192 * 256 + 512)
    assert _size(_params(_aam(final_semantics=False))) == full - 49_664
    # one by one: a 256 -> 256 conv + BN re-embeds the fused feature (256 * 256 + 512)
    assert _size(_params(_aam(ensemble_vote=False))) == full + 66_048


def test_paddle_se_gate_is_clip_of_0_2x_plus_0_5():
    from models.layers import SqueezeExcite

    se = SqueezeExcite(1, "paddle_hard_sigmoid")
    x = jnp.ones((1, 1, 1, 1))
    for pre, gate in ((0.0, 0.5), (1.0, 0.7), (3.0, 1.0), (-3.0, 0.0)):
        # reduce: 1 -> 1 with weight 1, bias 0 (ReLU(1) = 1); expand: weight 0, bias `pre`.
        v = {
            "params": {
                "reduce": {"kernel": jnp.ones((1, 1, 1, 1)), "bias": jnp.zeros(1)},
                "expand": {"kernel": jnp.zeros((1, 1, 1, 1)), "bias": jnp.full(1, pre)},
            }
        }
        assert float(se.apply(v, x)[0, 0, 0, 0]) == pytest.approx(gate)


def test_aam_fixes_output_stride_32():
    with pytest.raises(ValueError, match=r"output_stride: got 16; allowed: 32 for decoder 'aam'"):
        Arch.from_dict({**_aam().to_dict(), "output_stride": 16})
    moved = _aam().with_values({"output_stride": 16})  # a search move: reset, one identity
    assert moved.output_stride == 32 and moved.id == _aam().id
    # other decoders take StrideFormer at any output stride (stages 3-4 dilated)
    a = _aam().with_values({"decoder.name": "lraspp", "output_stride": 16})
    assert a.output_stride == 16


@pytest.mark.parametrize(
    "decoder,match",
    [
        ({"name": "aam", "variant": "x4"}, r"decoder.variant: got 'x4'; allowed: aam, aamsx8"),
        ({"name": "aam", "ensemble_vote": 1}, r"decoder.ensemble_vote: got 1; allowed: true"),
        ({"name": "unet", "final_semantics": False}, r"decoder.final_semantics: .*no such knob"),
        ({"name": "classifier"}, r"decoder.name: got 'classifier'; allowed: a segmenting"),
    ],
)
def test_bad_input_names_the_field(decoder, match):
    with pytest.raises(ValueError, match=match):
        Arch.from_dict(
            {"encoder": {"name": "strideformer_tiny"}, "decoder": decoder, "num_classes": 150}
        )


def test_bad_encoder_variant_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"encoder.name: got 'strideformer_huge'; allowed: .*"):
        Arch.from_dict({"encoder": {"name": "strideformer_huge"}, "decoder": {"name": "aam"}})
