"""nas.export.tflite: conversion without TensorFlow, op inspection, the runner and the timer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from models.layers import hard_swish, upsample_bilinear
from nas.export import tflite

RNG = np.random.default_rng(0)
W = RNG.normal(size=(3, 3, 3, 4)).astype(np.float32)
X = RNG.uniform(-1, 1, (1, 8, 8, 3)).astype(np.float32)


def _features(x):
    y = jax.lax.conv_general_dilated(
        x, W, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return upsample_bilinear(hard_swish(y), (16, 16))


def _two_outputs(x):
    y = _features(x)
    return y, jnp.argmax(y, -1).astype(jnp.int32)


@pytest.fixture(scope="module")
def model() -> bytes:
    return tflite.convert(_two_outputs, [X], ["image"], ["features", "labels"])


def test_convert_gives_builtin_ops_with_resize_bilinear(model):
    assert tflite.op_counts(model) == {
        "ARG_MAX": 1,
        "CONV_2D": 1,
        "HARD_SWISH": 1,
        "RESIZE_BILINEAR": 1,
    }
    assert tflite.non_builtin_ops(model) == []


def test_runner_matches_jax_and_names_outputs(model):
    runner = tflite.Runner(model)
    got = runner(image=X)
    want = _two_outputs(X)
    assert sorted(got) == ["features", "labels"]
    assert got["features"].shape == (1, 16, 16, 4) and got["labels"].dtype == np.int32
    assert np.max(np.abs(got["features"] - np.asarray(want[0]))) < 1e-5
    np.testing.assert_array_equal(got["labels"], np.asarray(want[1]))


def test_convert_single_output():
    tfl = tflite.convert(_features, [X], ["x"], ["y"], signature="run")
    out = tflite.Runner(tfl, signature="run")(x=X)
    assert list(out) == ["y"] and out["y"].shape == (1, 16, 16, 4)


@pytest.mark.parametrize(
    "inputs, outputs, field",
    [
        (["a", "b"], ["features", "labels"], "input_names"),
        (["image"], ["features"], "output_names"),
    ],
)
def test_convert_rejects_wrong_name_counts(inputs, outputs, field):
    with pytest.raises(ValueError, match=field):
        tflite.convert(_two_outputs, [X], inputs, outputs)


@pytest.mark.parametrize(
    "builtin, custom, name",
    [
        (schema.BuiltinOperator.CUSTOM, b"FlexErf", "CUSTOM:FlexErf"),
        (schema.BuiltinOperator.STABLEHLO_CONVOLUTION, None, "STABLEHLO_CONVOLUTION"),
        (schema.BuiltinOperator.DELEGATE, None, "DELEGATE"),
    ],
)
def test_non_builtin_ops_are_named(model, doctor, builtin, custom, name):
    doctored = doctor(model, builtin, custom)
    assert tflite.non_builtin_ops(doctored) == [name]
    assert tflite.op_counts(doctored)[name] == 1


def test_runner_rejects_bad_inputs(model):
    runner = tflite.Runner(model)
    with pytest.raises(ValueError, match=r"inputs: got \['img'\]; allowed: exactly \['image'\]"):
        runner(img=X)
    with pytest.raises(ValueError, match=r"input image: got shape \(1, 4, 4, 3\)"):
        runner(image=X[:, :4, :4])


def test_runner_quantizes_int8_io():
    """A full-int8 model has int8 input and output tensors: the runner converts both."""
    from ai_edge_quantizer import quantizer, recipe

    tfl = tflite.convert(_features, [X], ["image"], ["features"])
    q = quantizer.Quantizer(tfl, recipe.static_wi8_ai8())
    # X itself is among the calibration samples, so no activation of it is clipped.
    rng = np.random.default_rng(1)
    samples = [X] + [rng.uniform(-1, 1, X.shape).astype(np.float32) for _ in range(7)]
    calib = {"serving_default": [{"image": s} for s in samples]}
    int8 = bytes(q.quantize(q.calibrate(calib)).quantized_model)
    runner = tflite.Runner(int8)
    assert runner.inputs["image"]["dtype"] == np.int8
    assert runner.outputs["features"]["dtype"] == np.int8
    got = runner(image=X)["features"]
    want = np.asarray(_features(X))
    assert got.dtype == np.float32
    # An int8 step of the output is ~0.04 here; float32 cast into the int8 buffer (inputs
    # become 0 / +-1) or a missing dequantization would be off by whole units on average.
    assert np.mean(np.abs(got - want)) < 0.05
    assert np.max(np.abs(got - want)) < 0.6


def test_benchmark_on_the_tables_protocol(model):
    result = tflite.benchmark(model, {"image": X}, warmup=2, runs=7)
    assert result["runs"] == 7 and result["threads"] == 1 and result["warmup"] == 2
    assert result["clock"] == "thread-cpu" and result["companions"] == 0
    assert result["companion_sets"] == 0
    assert 0 < result["p10_ms"] <= result["median_ms"] <= result["p90_ms"]


@pytest.mark.parametrize("runs, warmup", [(0, 5), (3, -1)])
def test_benchmark_rejects_bad_counts(model, runs, warmup):
    with pytest.raises(ValueError, match="runs/warmup"):
        tflite.benchmark(model, {"image": X}, runs=runs, warmup=warmup)
