"""`segnas export`: a trained run and an arch file end to end, and every bad-input branch."""

from __future__ import annotations

import json

import pytest

from nas.cli import main as cli
from nas.export import policy as export
from nas.export import tflite


@pytest.fixture
def toy_default(monkeypatch, toy_data_cfg):
    """Parity data of checkpoint-less exports: the small toy_scenes in the test's tfds dir."""
    monkeypatch.setattr(export, "default_data_config", lambda: toy_data_cfg)


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_workdir_export_json(tmp_path, capsys, run_dir, tiny_arch):
    out = tmp_path / "run.tflite"
    code, stdout, _ = _run(["--workdir", run_dir, "--out", out, "--json"], capsys)
    assert code == 0
    report = json.loads(stdout)  # stdout holds the JSON only
    assert report == json.loads((tmp_path / "run.json").read_text())
    assert report["arch"] == tiny_arch.to_dict() and report["ops"]["RESIZE_BILINEAR"] == 4
    p = report["parity"]
    assert p["passed"] is True and p["n_inputs"] == 8 and p["argmax_agreement"] == 1.0
    assert p["max_abs_diff"] <= 1e-4


def test_arch_file_export_summary(tmp_path, capsys, toy_default, tiny_arch):
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(tiny_arch.to_json())
    out = tmp_path / "m.tflite"
    # int8 without a run: calibration comes from toy_scenes' training split.
    code, stdout, _ = _run(
        ["--arch", arch_file, "--out", out, "--output", "labels", "--quantize", "int8"], capsys
    )
    assert code == 0 and out.exists()
    lines = dict(line.split(None, 1) for line in stdout.splitlines() if "  " in line)
    assert lines["written"].startswith(str(out))
    assert "reported only (quantized): max abs diff n/a (labels)" in stdout
    assert "ARG_MAX 1" in stdout and "RESIZE_BILINEAR 4" in stdout
    assert "int8 / labels" in stdout
    assert "ms median (LiteRT XNNPACK, 1 thread, 40 runs)" in stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--preset", "seed000_final", "--out", "{d}/m.tflite", "--quantize", "int4"],
            "--quantize: got 'int4'; allowed: none, fp16, dynamic_int8, int8",
        ),
        (
            ["--preset", "seed000_final", "--out", "{d}/m.tflite", "--output", "mask"],
            "--output: got 'mask'; allowed: logits, labels, probs",
        ),
        (
            ["--preset", "seed000_final", "--out", "{d}/no/m.tflite"],
            "folder '{d}/no' does not exist",
        ),
        (["--preset", "seed000_final", "--out", "{d}/m.txt"], "allowed: a path ending in .tflite"),
        (
            ["--preset", "seed000_final", "--out", "/proc/m.tflite"],
            "folder '/proc' is not writable",
        ),
        (["--preset", "nope", "--out", "{d}/m.tflite"], "preset: got 'nope'; allowed: seed000_"),
        (
            ["--preset", "seed000_final", "--out", "{d}/m.tflite", "--calibration-images", "4"],
            "--calibration-images: got 4; allowed: an integer >= 8",
        ),
        (
            ["--arch", "{d}/none.json", "--out", "{d}/m.tflite"],
            "arch: file '{d}/none.json' not found",
        ),
        (["--workdir", "{d}/none", "--out", "{d}/m.tflite"], "has no checkpoints/ folder"),
        (
            ["--workdir", "{d}", "--resolution", "32", "32", "--out", "{d}/m.tflite"],
            "not allowed with --workdir",
        ),
        (["--preset", "seed000_final"], "the following arguments are required: --out"),
        (
            ["--preset", "a", "--arch", "b", "--out", "{d}/m.tflite"],
            "argument --arch: not allowed with argument --preset",
        ),
        (["--out", "{d}/m.tflite"], "one of the arguments --preset --arch --workdir is required"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    d = str(tmp_path)
    code, stdout, stderr = _run([a.format(d=d) for a in argv], capsys)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("segnas export: error: ")
    assert message.format(d=d) in stderr
    assert list(tmp_path.iterdir()) == []


def _offset(monkeypatch) -> None:
    real = tflite.convert
    monkeypatch.setattr(
        tflite, "convert", lambda fn, *a, **k: real(lambda x: fn(x) + 1e-3, *a, **k)
    )


def test_parity_failure_exits_2(tmp_path, capsys, monkeypatch, run_dir):
    _offset(monkeypatch)
    code, _, stderr = _run(["--workdir", run_dir, "--out", tmp_path / "m.tflite"], capsys)
    assert code == 2 and "segnas export: error: parity: max_abs_diff 0.001" in stderr
    assert list(tmp_path.iterdir()) == []


def test_force_writes_with_loud_warning(tmp_path, capsys, monkeypatch, run_dir):
    _offset(monkeypatch)
    code, stdout, stderr = _run(
        ["--workdir", run_dir, "--out", tmp_path / "m.tflite", "--force"], capsys
    )
    assert code == 0 and (tmp_path / "m.tflite").exists()
    assert "WARNING: --force: writing a model that FAILED the parity check" in stderr
    assert "parity             FAILED: max abs diff 0.001" in stdout


@pytest.mark.slow
def test_preset_seed000_final_full_resolution(tmp_path, capsys, toy_default):
    """The issue's acceptance command: EfficientNet-Lite0 + MLP decoder, group convs, 512x512."""
    code, stdout, _ = _run(
        ["--preset", "seed000_final", "--out", tmp_path / "m.tflite", "--json"], capsys
    )
    assert code == 0
    report = json.loads(stdout)  # stdout holds the JSON only
    assert report["ops"]["RESIZE_BILINEAR"] >= 1 and report["input"]["shape"] == [1, 512, 512, 3]
    assert not any(op.startswith(("STABLEHLO_", "CUSTOM", "DELEGATE")) for op in report["ops"])
    p = report["parity"]
    assert p["passed"] and p["max_abs_diff"] <= 1e-4 and p["argmax_agreement"] >= 0.999


@pytest.mark.slow
def test_trainer_run_exports_int8(tmp_path, capsys):
    """`segnas train` (smoke config) then `segnas export --workdir` with int8 calibrated on
    the run's own training data."""
    from experiments.toy_train import get_config
    from nas.train.loop import train_and_evaluate

    config = get_config("smoke")
    config.data.data_dir = str(tmp_path / "tfds")
    config.train.progress = False
    assert train_and_evaluate(config, tmp_path / "run").status == "complete"
    capsys.readouterr()  # what training printed
    out = tmp_path / "int8.tflite"
    code, stdout, _ = _run(
        ["--workdir", tmp_path / "run", "--out", out, "--quantize", "int8", "--json"], capsys
    )
    assert code == 0
    report = json.loads(stdout)  # stdout holds the JSON only
    assert report["quantize"] == "int8" and report["parity"]["passed"] is None
    assert report["parity"]["n_inputs"] == 8 and report["arch"]["resolution"] == [32, 32]
