"""nas.export.policy: real exports of a briefly trained tiny model, parity, quantization,
refusals."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from nas.errors import UserError
from nas.export import policy as export
from nas.export import tflite
from tests.conftest import LIGHT_COMPANIONS

SEG_OPS = {
    "ADD",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "HARD_SWISH",
    "MEAN",
    "MUL",
    "RELU",
    "RESIZE_BILINEAR",
}


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_training_fixture_learned(trained):
    _, losses = trained
    assert losses[-1] < 0.6 * losses[0]  # the quantized-parity tests need real margins


def test_float_export_writes_model_and_report(tmp_path, tiny_arch, trained, toy_images):
    variables, _ = trained
    out = tmp_path / "m.tflite"
    report = export.export_candidate(tiny_arch, variables, out, parity_inputs=toy_images["eval"])
    assert _files(tmp_path) == ["m.json", "m.tflite"]  # and no temporary files left
    assert json.loads((tmp_path / "m.json").read_text()) == report
    tfl = out.read_bytes()
    assert report["bytes"] == len(tfl) and report["ops"] == tflite.op_counts(tfl)
    assert set(report["ops"]) == SEG_OPS and report["ops"]["RESIZE_BILINEAR"] == 4
    assert report["segnas_version"] == "0.1.0"
    assert report["arch"] == tiny_arch.to_dict() and report["arch_id"] == tiny_arch.id
    assert (report["quantize"], report["output"], report["forced"]) == ("none", "logits", False)
    assert report["input"] == {"name": "image", "shape": [1, 64, 64, 3], "dtype": "float32"}
    p = report["parity"]
    assert p["passed"] is True and p["n_inputs"] == 8 and p["compared"] == "logits"
    assert p["max_abs_diff"] <= 1e-4 and p["argmax_agreement"] == 1.0
    assert p["thresholds"] == {"max_abs_diff": 1e-4, "argmax_agreement": 0.999}
    lat = report["latency"]
    assert lat["runs"] == 40 and lat["threads"] == 1 and lat["warmup"] == 5
    # the tables' protocol: thread CPU clock, among the sets `context.companion_sets` gives
    # (5 of 7 models, pinned in tests/nas/latency/test_context.py; here the suite's light
    # stand-in, tests/conftest.py, shows the export asks that function and reports its sets)
    assert lat["clock"] == "thread-cpu" and lat["companions"] == LIGHT_COMPANIONS
    assert lat["companion_sets"] == 1
    assert report["latency_ms"] == lat["median_ms"] == lat["measured_ms"] > 0
    assert "predicted_ms" not in lat  # nothing predicted it
    # Independently of the exporter's own check: the written file matches JAX on an image
    # it never saw.
    img = toy_images["train"][:1]
    want = np.asarray(export.inference_fn(tiny_arch, variables)(img))
    got = tflite.Runner(tfl)(image=img)["logits"]
    assert got.shape == (1, 64, 64, 5) and np.max(np.abs(got - want)) < 1e-4


@pytest.mark.parametrize(
    "output, op, dtype", [("labels", "ARG_MAX", np.int32), ("probs", "SOFTMAX", np.float32)]
)
def test_labels_and_probs_outputs(tmp_path, tiny_arch, trained, toy_images, output, op, dtype):
    variables, _ = trained
    out = tmp_path / f"{output}.tflite"
    report = export.export_candidate(
        tiny_arch, variables, out, output=output, parity_inputs=toy_images["eval"]
    )
    assert report["ops"][op] == 1 and report["output"] == output
    runner = tflite.Runner(out.read_bytes())
    assert list(runner.outputs) == [output]
    got = runner(image=toy_images["eval"][:1])[output]
    assert got.dtype == dtype and got.shape == (
        (1, 64, 64) if output == "labels" else (1, 64, 64, 5)
    )
    p = report["parity"]
    assert p["passed"] is True and p["argmax_agreement"] == 1.0 and p["compared"] == output
    if output == "labels":
        assert p["max_abs_diff"] is None  # class ids: only agreement is meaningful
    else:
        assert p["max_abs_diff"] <= 1e-5
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


# Bounds are ~3x the measured figures (fp16 4e-4, dynamic int8 9e-3, int8 0.16 on logits of
# magnitude ~5, agreement 1.0): they catch a broken recipe or broken int8 I/O handling.
@pytest.mark.parametrize(
    "quantize, max_diff, in_dtype",
    [("fp16", 2e-3, np.float32), ("dynamic_int8", 0.05, np.float32), ("int8", 0.6, np.int8)],
)
def test_quantized_exports_report_parity(
    tmp_path, tiny_arch, trained, toy_images, quantize, max_diff, in_dtype
):
    variables, _ = trained
    float_bytes = export.convert_float(tiny_arch, variables, "logits", toy_images["eval"][:1])
    report = export.export_candidate(
        tiny_arch,
        variables,
        tmp_path / "q.tflite",
        quantize=quantize,
        parity_inputs=toy_images["eval"],
        calibration_inputs=toy_images["train"],
    )
    p = report["parity"]
    assert p["passed"] is None and p["thresholds"] is None and "float only" in p["note"]
    assert p["reference"] == "float JAX model" and p["n_inputs"] == 8
    assert 0 < p["max_abs_diff"] < max_diff and p["argmax_agreement"] >= 0.99
    assert report["bytes"] < 0.6 * len(float_bytes)
    assert tflite.Runner((tmp_path / "q.tflite").read_bytes()).inputs["image"]["dtype"] == in_dtype
    if quantize == "fp16":
        assert report["ops"]["DEQUANTIZE"] > 0  # weights stored fp16, dequantized at load


def _offset_convert(monkeypatch, offset: float) -> None:
    """Makes the exported model differ from JAX by `offset`: a real parity failure."""
    real = tflite.convert

    def convert(fn, args, ins, outs, signature="serving_default"):
        return real(lambda x: fn(x) + offset, args, ins, outs, signature)

    monkeypatch.setattr(tflite, "convert", convert)


def test_parity_failure_writes_nothing(tmp_path, monkeypatch, tiny_arch, trained, toy_images):
    _offset_convert(monkeypatch, 1e-3)
    with pytest.raises(
        UserError,
        match=r"parity: max_abs_diff 0\.001.*allowed: max_abs_diff "
        r"<= 0\.0001.*nothing written",
    ):
        export.export_candidate(
            tiny_arch, trained[0], tmp_path / "m.tflite", parity_inputs=toy_images["eval"]
        )
    assert _files(tmp_path) == []


def test_force_writes_failing_model_with_warning(
    tmp_path, monkeypatch, capsys, tiny_arch, trained, toy_images
):
    _offset_convert(monkeypatch, 1e-3)
    report = export.export_candidate(
        tiny_arch, trained[0], tmp_path / "m.tflite", force=True, parity_inputs=toy_images["eval"]
    )
    assert _files(tmp_path) == ["m.json", "m.tflite"]
    assert report["forced"] is True and report["parity"]["passed"] is False
    assert abs(report["parity"]["max_abs_diff"] - 1e-3) < 1e-5
    assert "WARNING: --force" in capsys.readouterr().err


@pytest.mark.parametrize(
    "builtin, custom, name",
    [
        (schema.BuiltinOperator.CUSTOM, b"FlexErf", "CUSTOM:FlexErf"),
        (schema.BuiltinOperator.STABLEHLO_CONVOLUTION, None, "STABLEHLO_CONVOLUTION"),
    ],
)
def test_non_builtin_ops_refused_even_with_force(
    tmp_path, monkeypatch, tiny_arch, trained, toy_images, doctor, builtin, custom, name
):
    real = tflite.convert
    monkeypatch.setattr(tflite, "convert", lambda *a, **k: doctor(real(*a, **k), builtin, custom))
    with pytest.raises(UserError, match=f"non-builtin ops {name}; allowed: TFLite builtin"):
        export.export_candidate(
            tiny_arch,
            trained[0],
            tmp_path / "m.tflite",
            force=True,
            parity_inputs=toy_images["eval"],
        )
    assert _files(tmp_path) == []


def test_missing_resize_bilinear_refused(tmp_path, monkeypatch, tiny_arch, trained, toy_images):
    """A segmentation model whose upsampling became matmuls (plain jax.image.resize)."""
    real = tflite.convert

    def convert(fn, args, ins, outs, signature="serving_default"):
        return real(
            lambda x: jax.image.resize(x, (1, 128, 128, 3), "bilinear"), args, ins, outs, signature
        )

    monkeypatch.setattr(tflite, "convert", convert)
    with pytest.raises(UserError, match="no RESIZE_BILINEAR in the converted model"):
        export.export_candidate(
            tiny_arch, trained[0], tmp_path / "m.tflite", parity_inputs=toy_images["eval"]
        )
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"quantize": "int4"}, "quantize: got 'int4'; allowed: none, fp16, dynamic_int8, int8"),
        ({"output": "mask"}, "output: got 'mask'; allowed: logits, labels, probs"),
        ({"parity_inputs": np.zeros((7, 64, 64, 3))}, "parity_inputs: got 7 images; allowed: >= 8"),
        (
            {"parity_inputs": np.zeros((8, 64, 64, 1))},
            r"parity_inputs: got an image of shape "
            r"\(64, 64, 1\)",
        ),
        (
            {"quantize": "int8", "calibration_inputs": np.zeros((4, 64, 64, 3))},
            "calibration_inputs: got 4 images; allowed: >= 8",
        ),
    ],
)
def test_bad_arguments(tmp_path, tiny_arch, trained, kwargs, match):
    kwargs.setdefault("parity_inputs", np.zeros((8, 64, 64, 3), np.float32))
    with pytest.raises(UserError, match=match):
        export.export_candidate(tiny_arch, trained[0], tmp_path / "m.tflite", **kwargs)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "out, match",
    [
        ("missing/m.tflite", "folder .*missing' does not exist"),
        ("m.json", r"out: got .*m\.json'; allowed: a path ending in \.tflite"),
        ("dir.tflite", "is a directory"),
        ("file/m.tflite", "folder .*file' does not exist"),
    ],
)
def test_bad_out_paths(tmp_path, out, match):
    (tmp_path / "dir.tflite").mkdir()
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=match):
        export.check_out_path(tmp_path / out)


def test_unwritable_folder(tmp_path):
    with pytest.raises(UserError, match="folder '/proc' is not writable"):
        export.check_out_path("/proc/m.tflite")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch, tiny_arch, trained, toy_images):
    """The report's rename fails after the model's succeeded: both disappear."""
    import os

    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(UserError, match=r"cannot write .*m\.tflite' \(No space left on device"):
        export.export_candidate(
            tiny_arch, trained[0], tmp_path / "m.tflite", parity_inputs=toy_images["eval"]
        )
    assert len(calls) == 2 and _files(tmp_path) == []


def test_images_are_resized_to_the_arch(tiny_arch):
    images = [np.ones((32, 48, 3)), np.zeros((64, 64, 3))] * 4
    got = export._prepare_images(images, tiny_arch, "parity_inputs")
    assert got.shape == (8, 64, 64, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], 1.0, atol=1e-6)


def test_load_run_round_trips(run_dir, tiny_arch, trained, toy_data_cfg):
    arch, variables, data_cfg = export.load_run(run_dir)
    assert arch == tiny_arch and data_cfg.to_dict() == toy_data_cfg.to_dict()
    for a, b in zip(jax.tree.leaves(trained[0]), jax.tree.leaves(variables), strict=False):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_load_run_errors(tmp_path, run_dir):
    with pytest.raises(UserError, match="has no checkpoints/ folder"):
        export.load_run(tmp_path / "nope")
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    with pytest.raises(UserError, match="no checkpoint in"):
        export.load_run(tmp_path / "empty")
    # A run whose config.json is gone: the checkpoint alone does not say what data it saw.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "config.json").unlink()
    with pytest.raises(UserError, match="config.json' is missing or holds no data section"):
        export.load_run(copy)


def test_load_run_corrupt_checkpoint(tmp_path, run_dir):
    import shutil

    copy = tmp_path / "corrupt"
    shutil.copytree(run_dir, copy)
    for f in (copy / "checkpoints").rglob("*"):
        if f.is_file() and f.stat().st_size > 0 and "meta" not in f.parts:
            f.write_bytes(b"garbage")
    with pytest.raises(UserError, match="workdir: .*unreadable"):
        export.load_run(copy)


def _fake_eval(batches):
    def eval_batches(data_cfg, batch_size, split=None):
        assert split is None  # parity images: the eval split
        yield from batches

    return eval_batches


def test_dataset_images_skip_padding_and_flatten_clips(monkeypatch, toy_data_cfg):
    from data import pipeline

    clips = {
        "image": np.arange(2 * 4 * 2 * 2 * 3, dtype=np.float32).reshape(2, 4, 2, 2, 3),
        "mask": np.zeros((2, 4, 2, 2), np.int32),
    }
    monkeypatch.setattr(pipeline, "eval_batches", _fake_eval([clips]))
    got = export.dataset_images(toy_data_cfg, 8, train=False)
    np.testing.assert_array_equal(np.stack(got), clips["image"].reshape(8, 2, 2, 3))

    padded = {"image": np.ones((8, 2, 2, 3), np.float32), "mask": np.full((8, 2, 2), 255, np.int32)}
    padded["mask"][:3, 0, 0] = 1  # three real images, five rows of padding
    monkeypatch.setattr(pipeline, "eval_batches", _fake_eval([padded]))
    with pytest.raises(
        UserError,
        match="data: split of 'toy_scenes/images' has 3 images; allowed: >= 8 for the parity check",
    ):
        export.dataset_images(toy_data_cfg, 8, train=False)


def test_int8_calibration_images_are_training_images_without_augmentation(tmp_path):
    """Up to `n` images of the training split (all 64 of the smoke split here), with the
    evaluation preprocessing: exactly what eval_batches yields for that split."""
    from data import pipeline
    from experiments.toy_train import get_config

    cfg = get_config("smoke").data
    cfg.data_dir = str(tmp_path / "tfds")
    got = export.dataset_images(cfg, 100, train=True)
    assert len(got) == 64
    (first,) = [b["image"] for b in pipeline.eval_batches(cfg, 64, split=cfg.train_split)]
    np.testing.assert_array_equal(np.stack(got), first)
    assert len(export.dataset_images(cfg, 10, train=True)) == 10
    cfg.train_split = "train[:5]"  # fewer than the 8 the quantizer needs
    with pytest.raises(UserError, match="has 5 images; allowed: >= 8 for the int8 calibration"):
        export.dataset_images(cfg, 100, train=True)
