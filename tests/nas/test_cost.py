"""Cost model: pinned counts of published models and the counting convention itself."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.layers import ConvBNAct, upsample_bilinear
from nas.cost import cost, count_macs_jaxpr, count_params
from nas.space.presets import PRESETS, PUBLISHED, preset


@pytest.mark.parametrize(
    "name,params",
    [
        ("mobilenet_v3_large_imagenet", 5_483_032),  # torchvision
        ("mobilenet_v3_small_imagenet", 2_542_856),  # torchvision
        ("efficientnet_lite0_imagenet", 4_652_008),  # timm / tensorflow/tpu
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


def test_cost_keys_and_derived_values():
    c = cost(PRESETS["seed000_final"])
    assert (c["params"], c["macs"]) == (4_369_380, 3_243_223_040)
    assert c["flops"] == 6_486_446_080  # 2 per multiply-accumulate
    # 4, 2 and 1 bytes per parameter
    assert (c["bytes_fp32"], c["bytes_fp16"], c["bytes_int8"]) == (17_477_520, 8_738_760, 4_369_380)


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
