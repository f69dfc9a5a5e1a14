"""Cost model: pinned counts of published models and the counting convention itself."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.layers import ConvBNAct, upsample_bilinear
from nas.cost import (
    cost,
    count_macs,
    count_macs_jaxpr,
    count_params,
    live_equations,
    program_costs,
)
from nas.space.presets import PRESETS, PUBLISHED, preset


@pytest.mark.parametrize(
    "name,params",
    [
        ("mobilenet_v3_large_imagenet", 5_483_032),  # torchvision
        ("mobilenet_v3_small_imagenet", 2_542_856),  # torchvision
        ("efficientnet_lite0_imagenet", 4_652_008),  # timm / tensorflow/tpu
        ("shufflenet_v2_x0_5_imagenet", 1_366_792),  # torchvision
        ("shufflenet_v2_x1_0_imagenet", 2_278_604),  # torchvision
        ("shufflenet_v2_x1_5_imagenet", 3_503_624),  # torchvision
        ("shufflenet_v2_x2_0_imagenet", 7_393_996),  # torchvision
        ("mobilenet_v2_imagenet", 3_504_872),  # torchvision
    ],
)
def test_published_parameter_counts_exactly(name, params):
    assert cost(preset(name))["params"] == params == PUBLISHED[name]["params"]


@pytest.mark.parametrize(
    "name,macs",
    [("mobilenet_v3_large_imagenet", 216.59e6), ("mobilenet_v3_small_imagenet", 56.51e6)],
)
def test_published_macs_within_one_percent(name, macs):
    got = cost(preset(name))["macs"]
    assert abs(got / macs - 1) < 0.01, got
    # And exactly what segnas counted when these were first checked (regression pin).
    assert (
        got
        == {"mobilenet_v3_large_imagenet": 216_589_760, "mobilenet_v3_small_imagenet": 56_510_400}[
            name
        ]
    )


def test_lraspp_matches_torchvision_with_21_classes():
    # torchvision lraspp_mobilenet_v3_large (21 classes) has 3,221,538 parameters.
    arch = preset("lraspp_mobilenet_v3_large").replace(num_classes=21, resolution=(512, 512))
    assert cost(arch)["params"] == 3_221_538


@pytest.mark.parametrize(
    "name,params_m",
    [
        ("efficientnet_lite1_imagenet", 5.42),
        ("efficientnet_lite2_imagenet", 6.09),
        ("efficientnet_lite3_imagenet", 8.20),
        ("efficientnet_lite4_imagenet", 13.01),
    ],
)
def test_efficientnet_lite_family_matches_published_millions(name, params_m):
    assert round(cost(preset(name))["params"] / 1e6, 2) == params_m


# seed000_final's coarse head (decoder/bottleneck/coarse, the deep-supervision 1x1 conv the
# export drops): from EfficientNet-Lite0's stride-16 feature (112 channels) to 2 classes, with
# bias, at stride 32 (512 / 32 = 16 per side). Only params_train / macs_train count it.
COARSE_PARAMS = 112 * 2 + 2  # 226
COARSE_MACS = 16 * 16 * 112 * 2  # 57,344
FINAL_PARAMS_TRAIN, FINAL_MACS_TRAIN = 4_369_380, 3_243_223_040  # the pins before the change


def test_cost_keys_and_derived_values():
    c = cost(PRESETS["seed000_final"])
    params = FINAL_PARAMS_TRAIN - COARSE_PARAMS  # 4,369,380 - 226 = 4,369,154
    macs = FINAL_MACS_TRAIN - COARSE_MACS  # 3,243,223,040 - 57,344 = 3,243,165,696
    assert (c["params"], c["macs"]) == (params, macs) == (4_369_154, 3_243_165_696)
    assert (c["params_train"], c["macs_train"]) == (FINAL_PARAMS_TRAIN, FINAL_MACS_TRAIN)
    assert c["flops"] == 2 * macs == 6_486_331_392  # 2 per multiply-accumulate
    # 4, 2 and 1 bytes per deployed parameter
    assert (c["bytes_fp32"], c["bytes_fp16"], c["bytes_int8"]) == (17_476_616, 8_738_308, 4_369_154)


def test_baseline_drops_its_coarse_head_too():
    # seed000_baseline: MobileNetV3-Large's stride-16 feature is 112 channels too, 2 classes,
    # 256 / 32 = 8 per side: 226 params and 8*8*112*2 = 14,336 MACs fewer than as trained.
    c = cost(PRESETS["seed000_baseline"])
    assert (c["params_train"], c["macs_train"]) == (3_560_308, 289_640_320)
    assert (c["params"], c["macs"]) == (3_560_308 - 226, 289_640_320 - 8 * 8 * 112 * 2)


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "mobilenet_v3_small_imagenet"])
def test_models_without_an_auxiliary_head_deploy_everything(name):
    c = cost(preset(name))
    assert (c["params"], c["macs"]) == (c["params_train"], c["macs_train"])


def test_count_macs_deployed_or_train():
    arch = PRESETS["seed000_baseline"].replace(resolution=(64, 64))
    # 64 / 32 = 2 per side: the coarse head is 2*2*112*2 = 896 MACs.
    assert count_macs(arch, train=True) - count_macs(arch) == 2 * 2 * 112 * 2


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = ConvBNAct(16, 3, name="c1")(x)  # 8*8*16 * 3*3*3
        x = ConvBNAct(16, 3, groups=16, name="dw")(x)  # 8*8*16 * 3*3*1
        x = ConvBNAct(32, 3, stride=2, groups=4, name="g")(x)  # 4*4*32 * 3*3*4
        x = upsample_bilinear(x, (8, 8))  # not counted
        return nn.Dense(10, name="fc")(jnp.mean(x, axis=(1, 2)))  # 32*10


def test_mac_convention_on_a_hand_counted_model():
    x = jnp.ones((1, 8, 8, 3))
    variables = _Tiny().init(jax.random.key(0), x)
    jaxpr = jax.make_jaxpr(lambda v, x: _Tiny().apply(v, x))(variables, x).jaxpr
    assert count_macs_jaxpr(jaxpr) == 8 * 8 * 16 * 27 + 8 * 8 * 16 * 9 + 4 * 4 * 32 * 36 + 320
    # params: conv kernels + BN scale/bias (running statistics excluded) + dense.
    assert count_params(variables) == (27 * 16 + 32) + (9 * 16 + 32) + (36 * 32 + 64) + 330
    assert sum(np.size(v) for v in jax.tree.leaves(variables["batch_stats"])) == 2 * (16 + 16 + 32)


class _DeadHead(nn.Module):
    """(logits, aux) like a Segmenter: aux["coarse"] is a head that only a loss would read."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), strides=2, name="body")(x)  # 4*4*8 * 3*3*3; 3*3*3*8 + 8
        coarse = nn.Conv(5, (1, 1), name="coarse")(x)  # 4*4*5 * 8; 8*5 + 5 (dead)
        logits = nn.Dense(3, name="fc")(jnp.mean(x, axis=(1, 2)))  # 8*3; 8*3 + 3
        return logits, {"coarse": coarse}


def test_liveness_drops_a_head_only_aux_reads():
    x = jax.ShapeDtypeStruct((1, 8, 8, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: _DeadHead().init(jax.random.key(0), x), x)
    c = program_costs(lambda v, x: _DeadHead().apply(v, x), variables, x)
    body, coarse, fc = (27 * 8 + 8, 4 * 4 * 8 * 27), (8 * 5 + 5, 4 * 4 * 5 * 8), (8 * 3 + 3, 24)
    assert (c["params"], c["macs"]) == (body[0] + fc[0], body[1] + fc[1]) == (251, 3_480)
    assert (c["params_train"], c["macs_train"]) == (
        body[0] + coarse[0] + fc[0],
        body[1] + coarse[1] + fc[1],
    )
    jaxpr = jax.make_jaxpr(lambda v, x: _DeadHead().apply(v, x))(variables, x).jaxpr
    # The logits (the first output) need neither the coarse conv nor its bias add.
    live = live_equations(jaxpr.eqns, jaxpr.outvars[:1])
    assert sum(e.primitive.name == "conv_general_dilated" for e in live) == 1
    assert sum(e.primitive.name == "conv_general_dilated" for e in jaxpr.eqns) == 2


class _OddTiny(nn.Module):
    """Two strided convs, to count MACs at sizes that stride 2 does not divide."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(8, (3, 3), strides=2, padding="SAME", use_bias=False, name="c")(x)
        return nn.Conv(8, (5, 5), strides=2, feature_group_count=8, use_bias=False, name="dw")(x)


def test_macs_count_the_real_output_sizes_at_odd_inputs():
    # 7 x 5 input: the 3x3 stride-2 conv gives ceil(7 / 2) x ceil(5 / 2) = 4 x 3 x 8 outputs of
    # 3*3*3 MACs (2592); the 5x5 depthwise stride-2 conv gives 2 x 2 x 8 outputs of 25 (800).
    x = jnp.ones((1, 7, 5, 3))
    variables = _OddTiny().init(jax.random.key(0), x)
    jaxpr = jax.make_jaxpr(lambda v, x: _OddTiny().apply(v, x))(variables, x).jaxpr
    assert count_macs_jaxpr(jaxpr) == 4 * 3 * 8 * 27 + 2 * 2 * 8 * 25 == 3392
