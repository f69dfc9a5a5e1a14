"""The DeepLabV3 heads (basic and DPC): counts, shapes, DPC rates, dropout, knobs, export."""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.decoders.deeplabv3 import (
    DeepLabV3,
    DeepLabV3Config,
    dpc_rates,
    resize_align_corners,
)
from models.segmenter import Segmenter
from nas.cost import count_macs, program_costs
from nas.space.arch import Arch
from nas.space.space import Space

C_IN, CLASSES = 464, 19  # ShuffleNetV2 x1.0 stage 4, Cityscapes
ENC = {"name": "mobilenet_v3_large"}
FEATURE_360x640 = (1, 23, 40, C_IN)  # TF-SAME ceil sizes at output stride 16

# DPC rates [rh, rw] per branch, pinned for each output stride (16: the reference's table).
RATES = {
    8: ((2, 12), (36, 30), (12, 6), (2, 2), (12, 42)),
    16: ((1, 6), (18, 15), (6, 3), (1, 1), (6, 21)),
    32: ((1, 3), (9, 8), (3, 2), (1, 1), (3, 11)),  # segnas's: halved, rounded up
}


def _head(cell: str, classes: int = CLASSES) -> DeepLabV3:
    return DeepLabV3(classes, config=DeepLabV3Config(cell))


def _abstract(head: DeepLabV3, features: dict, out_hw: tuple[int, int]):
    feats = {s: jax.ShapeDtypeStruct(shape, jnp.float32) for s, shape in features.items()}
    variables = jax.eval_shape(lambda f: head.init(jax.random.key(0), f, out_hw), feats)
    return variables, feats


def _counts(variables) -> dict[str, int]:
    return {
        name: sum(math.prod(v.shape) for v in jax.tree.leaves(sub))
        for name, sub in variables["params"].items()
    }


def test_basic_head_parameters_by_hand():
    variables, _ = _abstract(_head("basic"), {16: FEATURE_360x640}, (360, 640))
    # conv kernels (no bias) + BN gamma and beta; the logits conv has a bias and no BN.
    want = {
        "image_pooling": 464 * 256 + 2 * 256,
        "aspp0": 464 * 256 + 2 * 256,
        "concat_projection": 512 * 256 + 2 * 256,
        "logits": 256 * 19 + 19,
    }
    assert _counts(variables) == want
    assert sum(want.values()) == 375_059


def test_dpc_head_parameters_by_hand():
    variables, _ = _abstract(_head("dpc"), {16: FEATURE_360x640}, (360, 640))
    # depthwise 3x3 on the input channels + BN, then 1x1 to 256 + BN; branch 0 reads the
    # 464-channel feature, the others a 256-channel branch.
    branch0 = (9 * 464 + 2 * 464) + (464 * 256 + 2 * 256)
    branch = (9 * 256 + 2 * 256) + (256 * 256 + 2 * 256)
    want = {
        "branch0": branch0,
        "branch1": branch,
        "branch2": branch,
        "branch3": branch,
        "branch4": branch,
        "concat_projection": 1280 * 256 + 2 * 256,
        "logits": 256 * 19 + 19,
    }
    assert _counts(variables) == want
    assert sum(want.values()) == 732_931


@pytest.mark.parametrize(
    "cell, macs",
    [
        # image pooling on 1x1, then 920 positions of 1x1 convs 464->256, 512->256, 256->19
        ("basic", 464 * 256 + 23 * 40 * (464 * 256 + 512 * 256 + 256 * 19)),
        # per position: dw 9*464 + pw 464*256, 4 x (dw 9*256 + pw 256*256), 1280->256, 256->19
        (
            "dpc",
            23 * 40 * (9 * 464 + 464 * 256 + 4 * (9 * 256 + 256 * 256) + 1280 * 256 + 256 * 19),
        ),
    ],
)
def test_head_macs_at_640x360(cell, macs):
    head = _head(cell)
    variables, feats = _abstract(head, {16: FEATURE_360x640}, (360, 640))
    costs = program_costs(lambda v, f: head.apply(v, f, (360, 640)), variables, feats)
    assert costs["macs"] == macs  # basic 234_461_184, dpc 668_714_880


@pytest.mark.parametrize("cell", ["basic", "dpc"])
def test_non_divisible_input_and_stride_8_features(cell):
    head = _head(cell)
    variables, feats = _abstract(head, {16: FEATURE_360x640}, (360, 640))
    logits, aux = jax.eval_shape(lambda v, f: head.apply(v, f, (360, 640)), variables, feats)
    assert logits.shape == (1, 360, 640, 19) and aux["decoded"].shape == (1, 23, 40, 256)
    # a hand-made output-stride-8 feature dict (deepest stride 8) at a non-square size
    features = {4: (2, 24, 40, 24), 8: (2, 12, 20, 40)}
    head = _head(cell, 3)
    variables, feats = _abstract(head, features, (96, 160))
    logits, aux = jax.eval_shape(lambda v, f: head.apply(v, f, (96, 160)), variables, feats)
    assert logits.shape == (2, 96, 160, 3) and aux["decoded"].shape == (2, 12, 20, 256)


@pytest.mark.parametrize("encoder", ["mobilenet_v3_large", "efficientnet_lite0"])
@pytest.mark.parametrize("output_stride", [16, 32])
@pytest.mark.parametrize("cell", ["basic", "dpc"])
def test_segmenter_shapes(encoder, output_stride, cell):
    model = Segmenter(
        encoder,
        "deeplabv3",
        5,
        decoder_config=DeepLabV3Config(cell),
        output_stride=output_stride,
    )
    x = jax.ShapeDtypeStruct((2, 64, 96, 3), jnp.float32)
    logits, aux = jax.eval_shape(lambda x: model.apply(model.init(jax.random.key(0), x), x), x)
    assert logits.shape == (2, 64, 96, 5)
    assert aux["decoded"].shape == (2, 64 // output_stride, 96 // output_stride, 256)


def test_dpc_rates_pinned():
    for stride, rates in RATES.items():
        assert dpc_rates(stride) == rates
    with pytest.raises(ValueError, match=r"^output_stride: got 4; allowed: 8, 16, 32$"):
        dpc_rates(4)


def _depthwise_dilations(jaxpr) -> list[tuple[int, int]]:
    return [
        tuple(e.params["rhs_dilation"])
        for e in jaxpr.eqns
        if e.primitive.name == "conv_general_dilated" and e.params["feature_group_count"] > 1
    ]


@pytest.mark.parametrize("stride", [8, 16, 32])
def test_dpc_convs_use_the_rates(stride):
    head = _head("dpc", 3)
    variables, feats = _abstract(head, {stride: (1, 8, 12, 32)}, (8 * stride, 12 * stride))
    jaxpr = jax.make_jaxpr(lambda v, f: head.apply(v, f, (8 * stride, 12 * stride)))(
        variables, feats
    )
    assert _depthwise_dilations(jaxpr.jaxpr) == list(RATES[stride])


def test_dpc_refuses_an_undefined_stride():
    with pytest.raises(ValueError, match=r"^output_stride: got 4; allowed: 8, 16, 32"):
        _head("dpc").init(jax.random.key(0), {4: jnp.zeros((1, 8, 8, 16))}, (32, 32))


def _random_variables(head: DeepLabV3, feats: dict, out_hw: tuple[int, int], rng) -> dict:
    """Random variables of the init's shapes, BN variances 1 (compiling the init costs
    seconds)."""
    return jax.tree_util.tree_map_with_path(
        lambda p, v: (
            np.ones(v.shape, np.float32)
            if str(p[-1]) == "['var']"
            else rng.standard_normal(v.shape).astype(np.float32)
        ),
        jax.eval_shape(lambda f: head.init(jax.random.key(0), f, out_hw), feats),
    )


@pytest.mark.parametrize("cell", ["basic", "dpc"])
def test_dropout_only_in_training(cell):
    head = _head(cell, 3)
    rng = np.random.default_rng(0)
    feats = {16: jnp.asarray(rng.standard_normal((2, 6, 8, 32)), jnp.float32)}
    variables = _random_variables(head, feats, (12, 16), rng)
    names = ["concat_projection"] if cell == "basic" else [f"branch{i}" for i in range(5)]

    @functools.partial(jax.jit, static_argnums=0)
    def run(train: bool, key: jax.Array):
        _, state = head.apply(
            variables,
            feats,
            (12, 16),
            train,
            rngs={"dropout": key},
            mutable=["batch_stats", "intermediates"],
            capture_intermediates=True,
        )
        inter = state["intermediates"]
        # the dropout input: the projection (basic) or the concat of the five branches (dpc)
        x = jnp.concatenate([inter[n]["__call__"][0] for n in names], -1)
        return x, inter["dropout"]["__call__"][0]

    def dropout_io(train: bool, key: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = run(train, jax.random.key(key))
        return np.asarray(x), np.asarray(y)

    x, y = dropout_io(False, 1)
    np.testing.assert_array_equal(x, y)  # inference: identity
    x, y = dropout_io(True, 1)
    live = x != 0
    dropped = live & (y == 0)
    assert 0.05 < dropped.sum() / live.sum() < 0.15  # rate 0.1 = keep 0.9
    kept = live & ~dropped
    np.testing.assert_allclose(y[kept], x[kept] / 0.9, rtol=1e-6)
    assert not np.array_equal(y, dropout_io(True, 2)[1])  # another key, another mask


@pytest.mark.parametrize("cell", ["basic", "dpc"])
def test_trains_every_parameter(cell):
    """A training step differentiates through dropout, BN batch stats and both resizes (the
    composite's own jvp rule); every parameter receives a gradient."""
    head = _head(cell, 3)
    rng = np.random.default_rng(0)
    feats = {16: jnp.asarray(rng.standard_normal((2, 3, 4, 16)), jnp.float32)}
    variables = _random_variables(head, feats, (48, 64), rng)
    labels = jnp.asarray(rng.integers(0, 3, (2, 48, 64)))

    def loss(params):
        logits, _ = head.apply(
            {**variables, "params": params},
            feats,
            (48, 64),
            True,
            rngs={"dropout": jax.random.key(1)},
            mutable=["batch_stats"],
        )[0]
        picked = jnp.take_along_axis(jax.nn.log_softmax(logits), labels[..., None], -1)
        return -picked.mean()

    grads = jax.jit(jax.grad(loss))(variables["params"])
    norms = {
        jax.tree_util.keystr(p): float(jnp.abs(g).sum())
        for p, g in jax.tree_util.tree_leaves_with_path(grads)
    }
    assert all(np.isfinite(n) and n > 0 for n in norms.values()), norms


def test_cell_knob_errors():
    with pytest.raises(ValueError, match=r"^cell: got 'aspp'; allowed: basic, dpc$"):
        DeepLabV3Config("aspp").validate()
    with pytest.raises(ValueError, match=r"^decoder.cell: got 'aspp'; allowed: basic, dpc$"):
        Arch.from_dict({"encoder": ENC, "decoder": {"name": "deeplabv3", "cell": "aspp"}})
    for head, knobs in (("lraspp", "none"), ("unet", "kind")):
        msg = (
            rf"^decoder.cell: got 'dpc'; allowed: no such knob for decoder '{head}' "
            rf"\(its knobs: {knobs}\)$"
        )
        with pytest.raises(ValueError, match=msg):
            Arch.from_dict({"encoder": ENC, "decoder": {"name": head, "cell": "dpc"}})


def test_cli_refuses_a_cell_knob_on_lraspp(capsys, tmp_path):
    from nas.cli.main import main

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({"encoder": ENC, "decoder": {"name": "lraspp", "cell": "dpc"}}))
    code = main(["cost", "--arch", str(arch)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith(
        "segnas cost: error: decoder.cell: got 'dpc'; allowed: no such knob for decoder "
        "'lraspp' (its knobs: none)"
    )
    assert err.count("\n") == 1  # one line


def test_cell_is_a_conditional_space_dimension():
    space = Space.from_dict(
        {
            "encoder": {"name": ["mobilenet_v3_small"]},
            "decoder": {
                "name": ["unet", "deeplabv3"],
                "kind": ["bilinear", "mlp"],
                "cell": ["basic", "dpc"],
            },
            "resolution": [[64, 64]],
        }
    )
    decoders = sorted(str(a.decoder.knobs()) for a in space.grid())
    assert decoders == [
        "{'cell': 'basic'}",
        "{'cell': 'dpc'}",
        "{'kind': 'bilinear'}",
        "{'kind': 'mlp'}",
    ]
    unet = space.arch({"decoder.name": "unet", "decoder.kind": "mlp", "decoder.cell": "dpc"})
    assert unet.to_dict()["decoder"] == {"name": "unet", "kind": "mlp"}
    dpc = unet.with_values({"decoder.name": "deeplabv3", "decoder.cell": "dpc"})
    assert dpc.to_dict()["decoder"] == {"name": "deeplabv3", "cell": "dpc"}
    assert dpc.flatten()["decoder.cell"] == "dpc"
    with pytest.raises(ValueError, match=r"^space.decoder.cell: got \['dpc'\]; allowed: a knob"):
        Space.from_dict(
            {
                "encoder": {"name": ["mobilenet_v3_small"]},
                "decoder": {"name": ["lraspp"], "cell": ["dpc"]},
                "resolution": [[64, 64]],
            }
        )


@pytest.mark.parametrize(
    "cell, head",
    [
        # the parent's own ops (global mean, resizes, concat) are the block "decoder"
        ("basic", ["decoder", "image_pooling", "aspp0", "concat_projection", "logits"]),
        ("dpc", [*(f"branch{i}" for i in range(5)), "decoder", "concat_projection", "logits"]),
    ],
)
def test_tiny_arch_costs_and_blocks(cell, head):
    from nas.latency.blocks import decompose, micro_model

    arch = Arch.from_dict(
        {
            "encoder": {"name": "mobilenet_v3_small", "width": 0.5},
            "decoder": {"name": "deeplabv3", "cell": cell},
            "resolution": [64, 96],
            "output_stride": 16,
            "num_classes": 3,
        }
    )
    blocks = decompose(arch)
    paths = [b.path for b in blocks if b.path.startswith("decoder")]
    assert paths == [p if p == "decoder" else f"decoder/{p}" for p in head]
    assert sum(b.macs for b in blocks) == count_macs(arch, train=True) == count_macs(arch)
    for b in blocks:
        fn, inputs = micro_model(b)
        out = jax.eval_shape(fn, *inputs)
        assert [o.shape for o in (out if isinstance(out, tuple) else (out,))] == list(b.outputs)


def _resize_flags(tfl: bytes) -> list[tuple[bool, bool]]:
    """(align_corners, half_pixel_centers) of every RESIZE_BILINEAR in the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tfl, 0))
    return [
        (bool(op.builtinOptions.alignCorners), bool(op.builtinOptions.halfPixelCenters))
        for sg in m.subgraphs
        for op in sg.operators
        if isinstance(op.builtinOptions, schema.ResizeBilinearOptionsT)
    ]


# jitted: op-by-op the gathers and arithmetic compile one by one (seconds)
_resize = jax.jit(resize_align_corners, static_argnums=1)


def test_resize_align_corners_by_hand():
    x = jnp.asarray([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    want = [[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]
    np.testing.assert_allclose(_resize(x, (3, 3))[0, ..., 0], want)
    # corners map to corners on a non-square, non-integer-ratio resize; 1x1 broadcasts
    y = jnp.arange(15.0).reshape(1, 3, 5, 1)
    z = np.asarray(_resize(y, (7, 11)))[0, ..., 0]
    assert (z[0, 0], z[0, -1], z[-1, 0], z[-1, -1]) == (0.0, 4.0, 10.0, 14.0)
    # output column 5 of 11 samples input column 5 * 4 / 10 = 2 (values 2, 7, 12 down the
    # rows); output row i of 7 samples input row i / 3
    want = [2.0, 2 + 5 / 3, 2 + 10 / 3, 7.0, 7 + 5 / 3, 7 + 10 / 3, 12.0]
    np.testing.assert_allclose(z[:, 5], want, rtol=1e-6)
    one = _resize(jnp.full((1, 1, 1, 2), 7.0), (4, 6))
    np.testing.assert_array_equal(one, np.full((1, 4, 6, 2), 7.0))


def test_resize_align_corners_gradient():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 3, 4, 2)), jnp.float32)
    g = jax.jit(jax.grad(lambda x: resize_align_corners(x, (5, 7)).sum()))(x)
    # d(sum)/d(input pixel) = its summed interpolation weights, separable by axis.
    # 3->5 samples rows 0, .5, 1, 1.5, 2: row 0 gets 1 + .5, row 1 .5 + 1 + .5, row 2 .5 + 1.
    rows = np.asarray([1.5, 2.0, 1.5])
    # 4->7 samples columns 0, .5, 1, ..., 3: the end columns get 1.5, the inner ones 2.
    cols = np.asarray([1.5, 2.0, 2.0, 1.5])
    np.testing.assert_allclose(g[0, ..., 0], np.outer(rows, cols), rtol=1e-6)
    np.testing.assert_allclose(g[0, ..., 1], np.outer(rows, cols), rtol=1e-6)


@pytest.mark.parametrize("src, dst", [((5, 7), (17, 29)), ((1, 1), (4, 6)), ((23, 40), (360, 640))])
def test_resize_align_corners_exports_as_one_builtin(src, dst):
    from nas.export import tflite

    x = np.random.default_rng(0).standard_normal((1, *src, 3)).astype(np.float32)
    fn = lambda x: resize_align_corners(x, dst)  # noqa: E731
    tfl = tflite.convert(fn, [x], ["x"], ["y"])
    assert tflite.op_counts(tfl) == {"RESIZE_BILINEAR": 1}
    assert _resize_flags(tfl) == [(True, False)]  # align_corners, no half-pixel centres
    got = tflite.Runner(tfl)(x=x)["y"]
    np.testing.assert_allclose(got, np.asarray(fn(x)), atol=1e-5)


@pytest.mark.slow  # ~30 s each on a 2-core CPU (init compile, conversion, parity)
@pytest.mark.parametrize("cell, resizes", [("basic", 2), ("dpc", 1)])
def test_tiny_arch_exports_with_parity(cell, resizes):
    from nas.export import policy, tflite

    arch = Arch.from_dict(
        {
            "encoder": {"name": "mobilenet_v3_small", "width": 0.5},
            "decoder": {"name": "deeplabv3", "cell": cell},
            "resolution": [64, 96],
            "output_stride": 16,
            "num_classes": 3,
        }
    )
    variables = policy.init_variables(arch)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 96, 3)).astype(np.float32)
    tfl = policy.convert_float(arch, variables, "logits", images[:1])
    ops = tflite.op_counts(tfl)
    assert tflite.non_builtin_ops(tfl) == [] and ops["RESIZE_BILINEAR"] == resizes
    # the image-pooling broadcast (basic) and the output resize: align_corners, as the reference
    assert _resize_flags(tfl) == [(True, False)] * resizes
    report = policy.measure_parity(tfl, arch, variables, "logits", images, quantized=False)
    assert report["passed"] is True, report
