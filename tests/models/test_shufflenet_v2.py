"""ShuffleNetV2 encoders: exact parameter counts from torchvision's documented totals and hand
arithmetic, feature shapes at output stride 8 / 16 / 32, the dilation plan of seed 001's Table
1, the shuffle order, bad widths, and an export parity check of seed 001's encoder."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.encoders import ENCODERS
from models.encoders.shufflenet_v2 import (
    ShuffleNetV2,
    ShuffleNetV2Config,
    Unit,
    channel_shuffle,
    unit_plan,
)
from models.layers import ConvSpec


def _init_shapes(module, hw=(64, 96)):
    x = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    return jax.eval_shape(module.init, jax.random.key(0), x)


def _params(module) -> int:
    return sum(math.prod(v.shape) for v in jax.tree.leaves(_init_shapes(module)["params"]))


def _encoder(name: str, width: float = 1.0, output_stride: int = 32):
    return ENCODERS[name].build(ShuffleNetV2Config(width), output_stride, ConvSpec(), "encoder")


# torchvision layout: torchvision's documented totals less conv5 (C4 x C5 + 2 C5 BN) and fc
# (C5 x 1000 + 1000): x0_5 1,366,792 - (192*1024 + 2048) - 1,025,000; x1_0 2,278,604 -
# (464*1024 + 2048) - 1,025,000; x1_5 3,503,624 - (704*1024 + 2048) - 1,025,000; x2_0
# 7,393,996 - (976*2048 + 4096) - (2048*1000 + 1000).
# Seed 001's variant differs only in stage 2's first unit (main branch 24 -> 24 -> 24 -> C2/2
# instead of 24 -> C2/2 -> C2/2 -> C2/2): at 1.0 1,392+116 + 522+116 + 3,364+116 = 5,626 becomes
# 576+48 + 216+48 + 1,392+116 = 2,396 (3,230 fewer); at 1.5 11,176 -> 3,176 (8,000 fewer); at 0.5
# the two are the same (C2/2 = 24). Its 2.0 (stage widths 224 / 448 / 896) by hand: stem 696,
# stage 2 6,976 + 3 x 26,768, stage 3 156,800 + 7 x 103,712, stage 4 614,656 + 3 x 408,128.
# Seed 001's 1.0 encoder + basic head (375,059 params at 19 classes) is 4.593 MB at 4 bytes,
# the paper's 4.6 MB.
ENCODER_PARAMS = {
    ("shufflenet_v2", 0.5): 143_136,
    ("shufflenet_v2", 1.0): 776_420,
    ("shufflenet_v2", 1.5): 1_755_680,
    ("shufflenet_v2", 2.0): 3_342_052,
    ("shufflenet_v2_seg", 0.5): 143_136,
    ("shufflenet_v2_seg", 1.0): 773_190,
    ("shufflenet_v2_seg", 1.5): 1_747_680,
    ("shufflenet_v2_seg", 2.0): 2_809_800,
}


@pytest.mark.parametrize(("name", "width"), list(ENCODER_PARAMS))
def test_encoder_parameter_counts(name, width):
    assert _params(_encoder(name, width)) == ENCODER_PARAMS[(name, width)]


def test_seg_variant_widens_only_stage_twos_first_main_branch():
    tv = _init_shapes(_encoder("shufflenet_v2"))["params"]
    seg = _init_shapes(_encoder("shufflenet_v2_seg"))["params"]
    assert tv["stage2_0"]["expand"]["conv"]["kernel"].shape == (1, 1, 24, 58)
    assert seg["stage2_0"]["expand"]["conv"]["kernel"].shape == (1, 1, 24, 24)
    assert seg["stage2_0"]["spatial"]["conv"]["kernel"].shape == (3, 3, 1, 24)
    assert seg["stage2_0"]["project"]["conv"]["kernel"].shape == (1, 1, 24, 58)
    # stage 3's input (116) is already half its output: both variants agree there
    assert seg["stage3_0"]["expand"]["conv"]["kernel"].shape == (1, 1, 116, 116)
    assert tv["stage3_0"]["expand"]["conv"]["kernel"].shape == (1, 1, 116, 116)
    # no conv5 in either encoder; stage 4 is the last module
    assert sorted(seg) == sorted(tv) and "conv5" not in seg and "stage4_3" in seg


# {stride: (h, w, channels)} for a 64 x 96 input at width 1.0 (stage widths 116 / 232 / 464).
SHAPES = {
    32: {2: (32, 48, 24), 4: (16, 24, 24), 8: (8, 12, 116), 16: (4, 6, 232), 32: (2, 3, 464)},
    16: {2: (32, 48, 24), 4: (16, 24, 24), 8: (8, 12, 116), 16: (4, 6, 464)},
    8: {2: (32, 48, 24), 4: (16, 24, 24), 8: (8, 12, 464)},
}


@pytest.mark.parametrize("name", ["shufflenet_v2", "shufflenet_v2_seg"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_shapes_at_each_output_stride(name, output_stride):
    module = _encoder(name, output_stride=output_stride)
    x = jax.ShapeDtypeStruct((2, 64, 96, 3), jnp.float32)
    feats = jax.eval_shape(lambda x: module.apply(module.init(jax.random.key(0), x), x), x)
    assert {s: f.shape for s, f in feats.items()} == {
        s: (2, *hwc) for s, hwc in SHAPES[output_stride].items()
    }


def test_sizes_not_divisible_by_the_stride_round_up_as_tf_same_does():
    # 45 x 70: stem ceil(/2) 23 x 35, pool 12 x 18, stages 6 x 9, 3 x 5, 2 x 3
    module = _encoder("shufflenet_v2_seg", 0.5)
    x = jax.ShapeDtypeStruct((1, 45, 70, 3), jnp.float32)
    feats = jax.eval_shape(lambda x: module.apply(module.init(jax.random.key(0), x), x), x)
    assert {s: f.shape[1:3] for s, f in feats.items()} == {
        2: (23, 35),
        4: (12, 18),
        8: (6, 9),
        16: (3, 5),
        32: (2, 3),
    }


def _plan_rows(output_stride):
    """(stage, stride of the first unit, rate of the first unit, rate of the others)."""
    plan = unit_plan("seg", 1.0, output_stride)
    rows = []
    for stage in (2, 3, 4):
        units = [u for u in plan if u.stage == stage]
        assert len({u.dilation for u in units[1:]}) == 1 and all(u.stride == 1 for u in units[1:])
        rows.append((stage, units[0].stride, units[0].dilation, units[1].dilation))
    return rows


def test_unit_plan_follows_seed_001_table_1():
    # Table 1 (OS 16): stage 4's first unit at stride 1, rate 1; its other three at rate 2.
    assert _plan_rows(16) == [(2, 2, 1, 1), (3, 2, 1, 1), (4, 1, 1, 2)]
    # Section 3.1, OS 8: the same from stage 3 (rate 2), stage 4 then at rate 4.
    assert _plan_rows(8) == [(2, 2, 1, 1), (3, 1, 1, 2), (4, 1, 2, 4)]
    assert _plan_rows(32) == [(2, 2, 1, 1), (3, 2, 1, 1), (4, 2, 1, 1)]
    plan = unit_plan("seg", 1.0, 16)
    assert len(plan) == 16 and plan[-1] == Unit(4, 3, 464, 1, 2)


def _depthwise_rates(output_stride) -> list[int]:
    """The rhs dilation of every depthwise conv the encoder really runs."""
    module = _encoder("shufflenet_v2_seg", 0.5, output_stride)
    x = jnp.zeros((1, 64, 64, 3))
    variables = _init_shapes(module, (64, 64))
    return [
        e.params["rhs_dilation"][0]
        for e in _eqns(jax.make_jaxpr(module.apply)(variables, x).jaxpr)
        if e.primitive.name == "conv_general_dilated" and e.params["feature_group_count"] > 1
    ]


def _eqns(jaxpr):
    """Every equation, those of nested jaxprs (jitted helpers) included, in program order."""
    for e in jaxpr.eqns:
        yield e
        for p in e.params.values():
            if hasattr(p, "jaxpr"):
                yield from _eqns(p.jaxpr)


def test_the_module_dilates_as_planned():
    # 19 depthwise convs: two in each of the 3 downsampling units, one in each of 13 others
    assert _depthwise_rates(32) == [1] * 19
    # OS 16: stage 4's three basic units at rate 2
    assert _depthwise_rates(16) == [1] * 16 + [2] * 3
    # OS 8: stage 2 (5) and stage 3's downsampling unit (2) at 1; stage 3's 7 basic units and
    # stage 4's downsampling unit (2) at 2; stage 4's 3 basic units at 4
    assert _depthwise_rates(8) == [1] * 7 + [2] * 9 + [4] * 3


def test_channel_shuffle_interleaves_the_halves():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)
    # torchvision's order: out[2j + g] = in[g * 4 + j]
    np.testing.assert_array_equal(np.asarray(channel_shuffle(x))[0, 0, 0], [0, 4, 1, 5, 2, 6, 3, 7])
    y = jnp.arange(12.0).reshape(1, 1, 2, 6)  # per pixel, not across pixels
    np.testing.assert_array_equal(
        np.asarray(channel_shuffle(y))[0, 0], [[0, 3, 1, 4, 2, 5], [6, 9, 7, 10, 8, 11]]
    )


@pytest.mark.parametrize("width", [0.75, 0.25, 3.0, True, "1.0"])
def test_bad_width_names_the_allowed_ones(width):
    with pytest.raises(ValueError) as e:
        ShuffleNetV2Config(width).validate()
    assert str(e.value) == f"width: got {width!r}; allowed: 0.5, 1.0, 1.5, 2.0"


def test_bad_width_in_an_arch_is_prefixed_with_encoder():
    from nas.space.arch import Arch

    for name in ("shufflenet_v2", "shufflenet_v2_seg"):
        with pytest.raises(ValueError) as e:
            Arch.from_dict(
                {"encoder": {"name": name, "width": 0.75}, "decoder": {"name": "classifier"}}
            )
        assert str(e.value) == "encoder.width: got 0.75; allowed: 0.5, 1.0, 1.5, 2.0"
    # ShuffleNetV2 has no depth knob
    with pytest.raises(ValueError, match=r"^encoder\.depth: got 1\.5; allowed: no such knob"):
        Arch.from_dict(
            {"encoder": {"name": "shufflenet_v2", "depth": 1.5}, "decoder": {"name": "classifier"}}
        )


def test_bad_output_stride_on_the_module():
    module = ShuffleNetV2(variant="seg", output_stride=4)
    with pytest.raises(ValueError) as e:
        _init_shapes(module)
    assert str(e.value) == "output_stride: got 4; allowed: 8, 16, 32"


def test_group_conv_spec_applies_to_the_units_spatial_convs():
    module = ENCODERS["shufflenet_v2_seg"].build(
        ShuffleNetV2Config(1.0), 32, ConvSpec("group", 8), "encoder"
    )
    p = _init_shapes(module)["params"]
    assert p["stage2_1"]["spatial"]["conv"]["kernel"].shape == (3, 3, 2, 58)  # gcd(58, 8) = 2
    assert p["stem"]["conv"]["kernel"].shape == (3, 3, 3, 24)  # the stem stays a plain conv


def test_seed_001_encoder_exports_to_builtins_with_parity():
    from nas.export import tflite

    module = _encoder("shufflenet_v2_seg", 0.5, output_stride=16)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 48, 80, 3)).astype(np.float32)
    shapes = _init_shapes(module, (48, 80))
    rng = np.random.default_rng(1)

    def leaf(path, s):
        if "var" in jax.tree_util.keystr(path):  # BN variances: positive
            return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
        return rng.normal(0, 0.3, s.shape).astype(np.float32)

    variables = jax.tree_util.tree_map_with_path(leaf, shapes)

    def features(x):
        return module.apply(variables, x)[16]

    tfl = tflite.convert(features, [x], ["image"], ["features"])
    assert tflite.non_builtin_ops(tfl) == []
    ops = tflite.op_counts(tfl)
    assert ops["TRANSPOSE"] == 16 and ops["DEPTHWISE_CONV_2D"] == 19 and ops["MAX_POOL_2D"] == 1
    got = tflite.Runner(tfl)(image=x)["features"]
    want = np.asarray(features(x))
    assert got.shape == want.shape == (1, 3, 5, 192)
    assert np.max(np.abs(got - want)) < 1e-4 * max(1.0, float(np.max(np.abs(want))))


# torchvision's documented _ops (GMACs, printed to 2-3 decimals), and exactly what segnas
# counted when these presets were first checked (regression pins).
MACS = {
    "shufflenet_v2_x0_5_imagenet": (0.04, 2, 40_476_448),
    "shufflenet_v2_x1_0_imagenet": (0.145, 3, 144_907_992),
    "shufflenet_v2_x1_5_imagenet": (0.296, 3, 295_759_392),
    "shufflenet_v2_x2_0_imagenet": (0.583, 3, 583_253_464),
}


@pytest.mark.parametrize("name", list(MACS))
def test_imagenet_presets_match_torchvisions_macs(name):
    from nas.cost import cost
    from nas.space.presets import PUBLISHED, preset

    gmacs, digits, exact = MACS[name]
    got = cost(preset(name))["macs"]
    assert round(got / 1e9, digits) == gmacs == PUBLISHED[name]["macs"] / 1e9
    assert got == exact
