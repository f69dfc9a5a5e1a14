"""The decomposition covers every part of a model exactly once, and signatures are canonical."""

from __future__ import annotations

import functools
import re

import jax
import numpy as np
import pytest
from jax.extend import core as jcore

from nas.cost import abstract_variables, count_macs
from nas.latency.blocks import decompose, micro_model, whole_model
from nas.space.arch import Arch
from nas.space.build import build_model
from nas.space.presets import preset

# Small archs that between them use every encoder family, every decoder, both conv types,
# output stride 16 (dilated blocks) and a non-square input.
ARCHS = [
    preset("seed000_baseline").replace(resolution=(64, 64)),
    Arch.from_dict(
        dict(
            encoder="efficientnet_lite0",
            decoder="channel_attention",
            conv_type="group",
            resolution=(64, 96),
        )
    ),
    Arch.from_dict(
        dict(encoder="mobilenet_v3_small", decoder="mlp", width=0.5, depth=1.5, resolution=(64, 64))
    ),
    Arch.from_dict(
        dict(
            encoder="mobilenet_v3_large",
            decoder="lraspp",
            output_stride=16,
            resolution=(64, 64),
            num_classes=3,
        )
    ),
]


@functools.cache
def _blocks(arch: Arch, output: str = "logits"):
    return decompose(arch, output)  # tracing takes ~1 s: once per arch for the whole file


def _leaf_paths(arch: Arch) -> list[str]:
    return [
        jax.tree_util.keystr(p, simple=True, separator="/")
        for p, _ in jax.tree_util.tree_flatten_with_path(abstract_variables(arch))[0]
    ]


@pytest.fixture(scope="module", params=range(len(ARCHS)), ids=lambda i: ARCHS[i].encoder)
def case(request):
    arch = ARCHS[request.param]
    return arch, _blocks(arch)


def test_every_variable_in_exactly_one_block(case):
    arch, blocks = case
    seen = [v for b in blocks for v in b.variables]
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(_leaf_paths(arch))


def test_top_level_submodules_are_the_blocks(case):
    arch, blocks = case
    # params/encoder/block3/expand/conv/kernel -> encoder/block3 (a child of encoder/decoder)
    owners = {tuple(p.split("/")[1:3]) for p in _leaf_paths(arch)}
    for b in blocks:
        assert {tuple(v.split("/")[1:3]) for v in b.variables} <= {tuple(b.path.split("/"))}
    with_vars = {tuple(b.path.split("/")) for b in blocks if b.variables}
    assert with_vars == owners
    assert len({b.path for b in blocks}) == len(blocks)


def test_block_macs_sum_to_the_cost_model(case):
    arch, blocks = case
    assert sum(b.macs for b in blocks) == count_macs(arch, train=True)


def test_baseline_block_list_is_pinned():
    blocks = _blocks(ARCHS[0])
    assert [b.path for b in blocks] == (
        ["encoder/stem"]
        + [f"encoder/block{i}" for i in range(1, 16)]
        + [
            "encoder/last_conv",
            "decoder/bottleneck",
            "decoder/stage16",
            "decoder/stage8",
            "decoder/stage4",
            "decoder/classify",
            "decoder",
        ]
    )
    kinds = {b.path: b.kind for b in blocks}
    assert kinds["encoder/stem"] == "ConvBNAct"
    assert kinds["encoder/block4"] == "InvertedResidual"
    assert kinds["decoder"] == "UNetDecoder"  # its own op: the output resize
    b4 = blocks[4]
    assert b4.fields == {
        "expanded": 72,
        "out": 40,
        "kernel": 5,
        "stride": 2,
        "dilation": 1,
        "se_squeeze": 24,
        "act": "relu",
        "conv.type": "depthwise",
        "conv.group_size": 8,
    }
    assert b4.inputs == ((1, 16, 16, 24),) and b4.outputs == ((1, 8, 8, 40),)
    assert re.fullmatch(r"InvertedResidual@1x16x16x24#[0-9a-f]{10}", b4.key)
    resize = blocks[-1]
    assert resize.inputs == ((1, 16, 16, 2),) and resize.outputs == ((1, 64, 64, 2),)
    assert resize.macs == 0 and resize.variables == ()


def test_lraspp_parent_ops_are_one_block():
    blocks = _blocks(ARCHS[3])
    glue = [b for b in blocks if b.path == "decoder"]
    assert len(glue) == 1 and glue[0].kind == "LRASPP"
    # gate mean, gated upsample and the final resize: inputs from encoder and head children
    assert len(glue[0].inputs) >= 3 and (1, 64, 64, 3) in glue[0].outputs
    dilated = [b for b in blocks if b.fields.get("dilation") == 2]
    assert dilated, "output stride 16 must dilate the last stage"


def test_labels_output_adds_an_argmax_block():
    blocks = _blocks(ARCHS[0], "labels")
    assert blocks[-1].path == "argmax" and blocks[-1].kind == "Argmax"
    assert blocks[-1].inputs == ((1, 64, 64, 2),) and blocks[-1].outputs == ((1, 64, 64),)
    with pytest.raises(ValueError, match="output: got 'probs'; allowed: logits, labels"):
        decompose(ARCHS[0], output="probs")


def test_equal_keys_mean_equal_programs():
    # group_size does not change a depthwise block: same programs, same keys; with group
    # convolutions it does, so those keys differ.
    a = Arch.from_dict(
        dict(
            encoder="mobilenet_v3_small",
            decoder="bilinear",
            conv_type="depthwise",
            group_size=8,
            resolution=(64, 64),
        )
    )
    same = [b.key for b in decompose(a)] == [
        b.key for b in decompose(a.with_values({"conv.group_size": 16}))
    ]
    assert same
    g8 = decompose(a.with_values({"conv.type": "group", "conv.group_size": 8}))
    g16 = decompose(a.with_values({"conv.type": "group", "conv.group_size": 16}))
    enc8 = {b.path: b.key for b in g8}
    enc16 = {b.path: b.key for b in g16}
    assert enc8["encoder/stem"] == enc16["encoder/stem"]  # the stem is a plain conv
    assert enc8["encoder/block4"] != enc16["encoder/block4"]
    # the same block at another resolution is another signature
    big = {b.path: b.key for b in decompose(a.replace(resolution=(128, 128)))}
    assert big["encoder/block4"] != {b.path: b.key for b in decompose(a)}["encoder/block4"]


def test_block_program_is_the_models_own_computation():
    arch = ARCHS[0]
    model = build_model(arch)
    image = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
    rng = np.random.default_rng(1)
    # Random variables of the right shapes (compiling model.init would take a minute);
    # BatchNorm variances must stay positive.
    variables = jax.tree_util.tree_map_with_path(
        lambda p, s: (np.abs if str(p[-1]) == "['var']" else np.asarray)(
            rng.standard_normal(s.shape).astype(np.float32)
        ),
        abstract_variables(arch),
    )
    _, aux = jax.jit(model.apply)(variables, image)
    leaves = dict(zip(_leaf_paths(arch), jax.tree.leaves(variables), strict=False))
    x = image
    for block in _blocks(arch)[:2]:  # stem, then block1: the last feature at stride 2
        run = jax.jit(jcore.jaxpr_as_fun(jcore.ClosedJaxpr(block.program, [])))
        (x,) = run(*[leaves[p] for p in block.constants], x)
    np.testing.assert_allclose(x, aux["stride_2"], rtol=1e-5, atol=1e-5)


def test_micro_models_run_with_the_recorded_shapes(case):
    arch, blocks = case
    for b in blocks:
        fn, inputs = micro_model(b)
        assert [x.shape for x in inputs] == list(b.inputs)
        out = jax.eval_shape(fn, *inputs)
        shapes = [o.shape for o in (out if isinstance(out, tuple) else (out,))]
        assert shapes == list(b.outputs)
    fn, inputs = micro_model(blocks[4])  # random weights: finite outputs (no NaN from BN)
    assert all(np.isfinite(np.asarray(o)).all() for o in jax.tree.leaves(fn(*inputs)))


def test_whole_model_shapes():
    fn, (image,) = whole_model(ARCHS[1])
    assert image.shape == (1, 64, 96, 3) and jax.eval_shape(fn, image).shape == (1, 64, 96, 2)
    fn, (image,) = whole_model(ARCHS[1], output="labels")
    labels = jax.eval_shape(fn, image)
    assert labels.shape == (1, 64, 96) and labels.dtype == np.int32
    with pytest.raises(ValueError, match="output"):
        whole_model(ARCHS[1], output="probs")
