"""MobileNetV2 encoder: the parameter count from torchvision's documented total, the block
table, feature shapes at output stride 8 / 16 / 32 and bad knobs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import pytest

from models.encoders import ENCODERS
from models.encoders.mobilenet_v2 import MobileNetV2, MobileNetV2Config, classifier_head
from models.layers import ConvSpec


def _encoder(width: float = 1.0, depth: float = 1.0, output_stride: int = 32):
    return ENCODERS["mobilenet_v2"].build(
        MobileNetV2Config(width, depth), output_stride, ConvSpec(), "encoder"
    )


def _init_shapes(module, hw=(64, 96)):
    x = jax.ShapeDtypeStruct((1, *hw, 3), jnp.float32)
    return jax.eval_shape(module.init, jax.random.key(0), x)


def _params(module) -> int:
    return sum(math.prod(v.shape) for v in jax.tree.leaves(_init_shapes(module)["params"]))


def test_encoder_parameter_count():
    # torchvision's mobilenet_v2: 3,504,872 less features.18 (320 x 1280 + 2 x 1280 BN) and the
    # classifier (1280 x 1000 + 1000). With seed 001's basic head (301,331 params at 19
    # classes) it is 8.45 MB at 4 bytes, the paper's 8.4 MB.
    assert _params(_encoder()) == 3_504_872 - (320 * 1280 + 2560) - (1280 * 1000 + 1000)
    assert _params(_encoder()) == 1_811_712


def test_block_table():
    p = _init_shapes(_encoder())["params"]
    assert p["stem"]["conv"]["kernel"].shape == (3, 3, 3, 32)
    assert "expand" not in p["block1"]  # expansion 1: depthwise 32, project to 16
    assert p["block1"]["spatial"]["conv"]["kernel"].shape == (3, 3, 1, 32)
    assert p["block1"]["project"]["conv"]["kernel"].shape == (1, 1, 32, 16)
    assert p["block2"]["expand"]["conv"]["kernel"].shape == (1, 1, 16, 96)
    assert p["block14"]["expand"]["conv"]["kernel"].shape == (1, 1, 96, 576)
    assert p["block17"]["expand"]["conv"]["kernel"].shape == (1, 1, 160, 960)
    assert p["block17"]["project"]["conv"]["kernel"].shape == (1, 1, 960, 320)
    assert "block18" not in p and "last_conv" not in p  # the 1280 conv is the classifier's


def test_width_scaling_as_torchvision():
    # width 0.5: stem make_divisible(16) = 16, block1 16 -> 8, block2 expands round(8 * 6) = 48
    p = _init_shapes(_encoder(width=0.5))["params"]
    assert p["stem"]["conv"]["kernel"].shape == (3, 3, 3, 16)
    assert p["block1"]["project"]["conv"]["kernel"].shape == (1, 1, 16, 8)
    assert p["block2"]["expand"]["conv"]["kernel"].shape == (1, 1, 8, 48)
    assert p["block17"]["project"]["conv"]["kernel"].shape == (1, 1, 480, 160)
    # the classifier's head conv scales only above width 1
    assert classifier_head("v2", MobileNetV2Config(0.5))["head_conv"] == 1280
    assert classifier_head("v2", MobileNetV2Config(1.4))["head_conv"] == 1792


def test_depth_scales_each_group():
    p = _init_shapes(_encoder(depth=0.5))["params"]
    # ceil(0.5 n) blocks per group: 1 + 1 + 2 + 2 + 2 + 2 + 1 = 11
    assert sorted(p, key=lambda k: (len(k), k))[-1] == "block11"
    assert p["block11"]["project"]["conv"]["kernel"].shape == (1, 1, 960, 320)


# {stride: (h, w, channels)} for a 64 x 96 input at width 1.0.
SHAPES = {
    32: {2: (32, 48, 16), 4: (16, 24, 24), 8: (8, 12, 32), 16: (4, 6, 96), 32: (2, 3, 320)},
    16: {2: (32, 48, 16), 4: (16, 24, 24), 8: (8, 12, 32), 16: (4, 6, 320)},
    8: {2: (32, 48, 16), 4: (16, 24, 24), 8: (8, 12, 320)},
}


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_shapes_at_each_output_stride(output_stride):
    module = _encoder(output_stride=output_stride)
    x = jax.ShapeDtypeStruct((2, 64, 96, 3), jnp.float32)
    feats = jax.eval_shape(lambda x: module.apply(module.init(jax.random.key(0), x), x), x)
    assert {s: f.shape for s, f in feats.items()} == {
        s: (2, *hwc) for s, hwc in SHAPES[output_stride].items()
    }


def _depthwise_rates(output_stride) -> list[int]:
    module = _encoder(width=0.35, output_stride=output_stride)
    variables = _init_shapes(module, (64, 64))
    jaxpr = jax.make_jaxpr(module.apply)(variables, jnp.zeros((1, 64, 64, 3))).jaxpr
    return [
        e.params["rhs_dilation"][0]
        for e in _eqns(jaxpr)
        if e.primitive.name == "conv_general_dilated" and e.params["feature_group_count"] > 1
    ]


def _eqns(jaxpr):
    """Every equation, those of nested jaxprs (jitted helpers) included, in program order."""
    for e in jaxpr.eqns:
        yield e
        for p in e.params.values():
            if hasattr(p, "jaxpr"):
                yield from _eqns(p.jaxpr)


def test_output_stride_dilates_the_deep_blocks():
    assert _depthwise_rates(32) == [1] * 17
    # OS 16 (DeepLab's rule): block 14 stops striding at rate 1, blocks 15-17 at rate 2
    assert _depthwise_rates(16) == [1] * 14 + [2] * 3
    # OS 8: block 7 stops striding at 1, blocks 8-14 at 2 (14 stops striding), 15-17 at 4
    assert _depthwise_rates(8) == [1] * 7 + [2] * 7 + [4] * 3


def test_bad_knobs():
    with pytest.raises(ValueError) as e:
        MobileNetV2Config(width=0.0).validate()
    assert str(e.value) == "width: got 0.0; allowed: a number in (0, 4]"
    module = MobileNetV2(output_stride=64)
    with pytest.raises(ValueError) as e:
        _init_shapes(module)
    assert str(e.value) == "output_stride: got 64; allowed: 8, 16, 32"


def test_imagenet_preset_matches_torchvision():
    from nas.cost import cost
    from nas.space.presets import PUBLISHED, preset

    c = cost(preset("mobilenet_v2_imagenet"))
    assert c["params"] == 3_504_872 == PUBLISHED["mobilenet_v2_imagenet"]["params"]
    # torchvision's _ops 0.301 GMACs; 300,774,272 is what segnas counted when first checked
    assert round(c["macs"] / 1e9, 3) == 0.301 == PUBLISHED["mobilenet_v2_imagenet"]["macs"] / 1e9
    assert c["macs"] == 300_774_272
