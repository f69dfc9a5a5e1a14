"""Output stride 8 / 16 / 32 and input sizes not divisible by it: the stride / dilation rule
(hand-derived schedules), the dilations the traced models really use, feature and logit shapes
for every encoder x decoder, what each decoder fuses, and a float export at 360 x 640."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

from models.decoders import DECODERS, SEGMENTATION
from models.encoders import ENCODERS
from models.encoders.common import stride_schedule
from nas.space.arch import Arch
from nas.space.build import build_model

ODD = (45, 75)  # non-square, divisible by none of 2, 4, 8, 16, 32

# MobileNetV3-Large's 15 block strides (torchvision's table), entered at stride 2.
LARGE = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1]
# ShuffleNetV2's 4 / 8 / 4 units, each stage's first strided, entered at 4 (stem + max-pool).
SHUFFLE = [2, 1, 1, 1] + [2] + [1] * 7 + [2, 1, 1, 1]


def test_schedule_torchvision_convention_dilates_the_unit_that_stops_striding():
    assert stride_schedule(LARGE, stride=2, output_stride=32) == [(s, 1) for s in LARGE]
    # torchvision's dilated=True: blocks 13-15 at stride 1, dilation 2.
    os16 = stride_schedule(LARGE, stride=2, output_stride=16)
    assert os16 == [(s, 1) for s in LARGE[:12]] + [(1, 2)] * 3
    # 1/16 stage (blocks 7-12) dilated by 16 / 8 = 2, 1/32 stage (13-15) by 32 / 8 = 4.
    os8 = stride_schedule(LARGE, stride=2, output_stride=8)
    assert os8 == [(1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1)] + [(1, 2)] * 6 + [(1, 4)] * 3


def test_schedule_deeplab_convention_dilates_from_the_next_unit():
    def sched(os):
        return stride_schedule(SHUFFLE, stride=4, output_stride=os, dilate_first=False)

    stage2 = [(2, 1), (1, 1), (1, 1), (1, 1)]
    assert sched(32) == [(s, 1) for s in SHUFFLE]
    # Seed 001 at output stride 16: stage 4's first unit at stride 1, rate 1; the rest rate 2.
    assert sched(16) == stage2 + [(2, 1)] + [(1, 1)] * 7 + [(1, 1)] + [(1, 2)] * 3
    # Output stride 8: the change starts in stage 3 (rate 2), stage 4 goes on at rate 4.
    assert sched(8) == stage2 + [(1, 1)] + [(1, 2)] * 7 + [(1, 2)] + [(1, 4)] * 3


def _convs(eqns) -> list[jcore.JaxprEqn]:
    out = []
    for e in eqns:
        if e.primitive.name == "conv_general_dilated":
            out.append(e)
        elif e.primitive.name != "composite":
            for p in e.params.values():
                for q in p if isinstance(p, (list, tuple)) else (p,):
                    if isinstance(q, jcore.ClosedJaxpr):
                        out += _convs(q.jaxpr.eqns)
    return out


def _depthwise_strides_and_dilations(encoder: str, output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of every k x k depthwise conv, in program order (LR-ASPP has none)."""
    arch = Arch.from_dict(
        dict(encoder=encoder, decoder="lraspp", output_stride=output_stride, resolution=(64, 64))
    )
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    v = jax.eval_shape(model.init, jax.random.key(0), x)
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x))(v, x).jaxpr
    return [
        (e.params["window_strides"][0], e.params["rhs_dilation"][0])
        for e in _convs(jaxpr.eqns)
        if e.params["feature_group_count"] > 1
    ]


def test_traced_mobilenet_v3_large_uses_the_schedule_at_output_stride_8():
    got = _depthwise_strides_and_dilations("mobilenet_v3_large", 8)
    assert got == [(1, 1), (2, 1), (1, 1), (2, 1), (1, 1), (1, 1)] + [(1, 2)] * 6 + [(1, 4)] * 3


def test_traced_efficientnet_lite0_uses_the_schedule_at_output_stride_8():
    # Lite0's 16 blocks by group: 1, 2 (/2), 2 (/2), 3 (/2), 3, 4 (/2), 1.
    got = _depthwise_strides_and_dilations("efficientnet_lite0", 8)
    assert got == [(1, 1), (2, 1), (1, 1), (2, 1), (1, 1)] + [(1, 2)] * 6 + [(1, 4)] * 5


def _shapes(arch: Arch):
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((1, *arch.resolution, 3), jnp.float32)
    # init_with_output traces the forward pass once (init, then apply, would trace it twice).
    return jax.eval_shape(lambda x: model.init_with_output(jax.random.key(0), x)[0], x)


def _ceil(res: tuple[int, int], s: int) -> tuple[int, int]:
    return (math.ceil(res[0] / s), math.ceil(res[1] / s))


# EfficientNet-Lite1-3 are Lite0's blocks at widths and depths between Lite0's and Lite4's:
# the two ends stand for the variant family (each cell traces three models).
GRID_ENCODERS = sorted(e for e in ENCODERS if e not in {f"efficientnet_lite{i}" for i in (1, 2, 3)})


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@pytest.mark.parametrize("encoder", GRID_ENCODERS)
def test_shapes_every_encoder_decoder_every_output_stride_at_an_odd_size(encoder, decoder):
    for os in (8, 16, 32):
        d = {
            "encoder": {"name": encoder},
            "decoder": {"name": decoder},
            "resolution": list(ODD),
            "output_stride": os,
            "num_classes": 3,
        }
        if decoder == "classifier" and ENCODERS[encoder].classifier is None:
            with pytest.raises(ValueError, match="decoder.name: got 'classifier'"):
                Arch.from_dict(d)  # StrideFormer has no ImageNet head
            return
        if decoder == "aam" and os != 32:
            with pytest.raises(ValueError, match=f"output_stride: got {os}; allowed: 32"):
                Arch.from_dict(d)  # AAM fuses 1/8, 1/16 and 1/32
            continue
        arch = Arch.from_dict(d)
        logits, aux = _shapes(arch)
        want = (1, *ODD, 3) if decoder in SEGMENTATION else (1, 3)
        assert logits.shape == want, (os, logits.shape)
        strides = sorted(int(k.split("_")[1]) for k in aux if k.startswith("stride_"))
        assert strides[-1] == os and set(strides) <= {2, 4, 8, 16, 32}, (os, strides)
        for s in strides:
            assert aux[f"stride_{s}"].shape[1:3] == _ceil(ODD, s), (os, s)
        if decoder == "unet":
            assert aux["coarse_logits"].shape[1:3] == _ceil(ODD, os)
            assert aux["decoded"].shape[1:3] == _ceil(ODD, 4)
        if decoder == "lraspp":
            assert aux["decoded"].shape[1:3] == _ceil(ODD, 8 if os > 8 else 4)


@pytest.mark.parametrize("os, deepest", [(8, (45, 80)), (16, (23, 40)), (32, (12, 20))])
def test_seed_001_size_360x640_gives_ceil_feature_maps(os, deepest):
    arch = Arch.from_dict(
        dict(
            encoder="mobilenet_v3_large",
            decoder="lraspp",
            resolution=(360, 640),
            output_stride=os,
            num_classes=19,
        )
    )
    logits, aux = _shapes(arch)
    assert logits.shape == (1, 360, 640, 19)
    assert aux[f"stride_{os}"].shape == (1, *deepest, 960)
    assert aux["stride_4"].shape == (1, 90, 160, 24)
    if os > 8:
        assert aux["stride_8"].shape == (1, 45, 80, 40)


def _decoder_params(encoder: str, decoder: dict, os: int) -> dict:
    arch = Arch.from_dict(
        {
            "encoder": {"name": encoder},
            "decoder": decoder,
            "resolution": [64, 64],
            "output_stride": os,
            "num_classes": 3,
        }
    )
    model = build_model(arch)
    v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    return v["params"]["decoder"]


def test_unet_fuses_the_skips_that_exist():
    dec = {"name": "unet", "kind": "mlp"}
    stages = {os: sorted(_decoder_params("mobilenet_v3_large", dec, os)) for os in (8, 16, 32)}
    assert stages[32] == ["bottleneck", "classify", "stage16", "stage4", "stage8"]
    assert stages[16] == ["bottleneck", "classify", "stage4", "stage8"]
    assert stages[8] == ["bottleneck", "classify", "stage4"]
    # At 8 the bottleneck reduces the 960-channel 1/8 feature to the 1/4 skip's 24 channels.
    p = _decoder_params("mobilenet_v3_large", dec, 8)
    assert p["bottleneck"]["reduce"]["conv"]["kernel"].shape == (1, 1, 960, 24)


def test_lraspp_skip_is_the_1_8_feature_or_the_1_4_one_at_output_stride_8():
    def low_in(os):
        p = _decoder_params("mobilenet_v3_large", {"name": "lraspp"}, os)
        return p["low_classifier"]["kernel"].shape[2]

    assert (low_in(32), low_in(16), low_in(8)) == (40, 40, 24)


def _random_variables(model, x, seed):
    """Numpy-initialised variables: no initialiser compile; BN variances and scales positive."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)

    def leaf(path, s):
        name = jax.tree_util.keystr(path)
        if "'var'" in name or "'scale'" in name:
            return (1.0 + 0.1 * rng.random(s.shape)).astype(np.float32)
        if len(s.shape) == 1:
            return (rng.standard_normal(s.shape) * 0.1).astype(np.float32)
        fan_in = int(np.prod(s.shape[:-1]))
        return (rng.standard_normal(s.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(leaf, shapes)


@pytest.mark.parametrize(  # ~12 s each on a 2-core CPU, mostly the conversion
    "decoder, os", [({"name": "lraspp"}, 16), ({"name": "unet", "kind": "bilinear"}, 8)]
)
def test_float_export_at_360x640_passes_parity(decoder, os):
    from nas.export import policy

    arch = Arch.from_dict(
        {
            "encoder": {"name": "mobilenet_v3_small", "width": 0.5},
            "decoder": decoder,
            "resolution": [360, 640],
            "output_stride": os,
            "num_classes": 3,
        }
    )
    images = np.random.default_rng(0).uniform(-1, 1, (2, 360, 640, 3)).astype(np.float32)
    variables = _random_variables(build_model(arch), jnp.asarray(images[:1]), 0)
    tfl = policy.convert_float(arch, variables, "logits", images[:1])
    parity = policy.measure_parity(tfl, arch, variables, "logits", images, quantized=False)
    assert parity["passed"], parity
    assert parity["max_abs_diff"] <= 1e-4 and parity["argmax_agreement"] == 1.0, parity
    print(f"360x640 {arch.label()} OS {os}: {parity}")
