"""VIM in the exported model: a small PP-MobileSeg-Tiny (150 classes, 64 x 64, random working
variables) exported with `labels_vim4`: builtins only, the VIM ops present, the full-resolution
150-class upsample gone, parity with JAX; and the bad-input branches of the API and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from nas.cli import main as cli
from nas.errors import UserError
from nas.export import policy as export
from nas.export import tflite
from nas.latency.blocks import random_variables
from nas.space.presets import preset

ARCH = preset("pp_mobileseg_tiny").replace(resolution=(64, 64))
UNET = preset("seed000_baseline").replace(resolution=(64, 64))


@pytest.fixture(scope="module")
def vim_export(tmp_path_factory):
    """(report, flatbuffer) of the VIM K = 4 export, parity on 8 random images, timed alone."""
    variables = random_variables(ARCH, np.random.default_rng(0))
    images = np.random.default_rng(1).standard_normal((8, 64, 64, 3)).astype(np.float32)
    out = tmp_path_factory.mktemp("vim") / "m.tflite"
    report = export.export_candidate(
        ARCH, variables, out, output="labels_vim4", parity_inputs=images, companion_sets=[]
    )
    return report, out.read_bytes()


def test_vim_export_is_builtin_with_its_ops(vim_export):
    report, tfl = vim_export
    assert report["output"] == "labels_vim4" and tflite.non_builtin_ops(tfl) == []
    ops = report["ops"]
    # low-res argmax + final argmax, the class counts, top-k, the two gathers
    assert ops["ARG_MAX"] == 2 and ops["ONE_HOT"] == 1 and ops["TOPK_V2"] == 1
    assert ops["GATHER_ND"] == 2 and ops["RESIZE_BILINEAR"] == 7  # 6 in the network, 1 VIM's


def test_vim_export_upsamples_k_maps_not_150(vim_export):
    _, tfl = vim_export
    runner = tflite.Runner(tfl)
    full_res = {
        tuple(int(x) for x in d["shape"])
        for d in runner.interpreter.get_tensor_details()
        if len(d["shape"]) == 4 and tuple(d["shape"][1:3]) == (64, 64)
    }
    assert full_res == {(1, 64, 64, 3), (1, 64, 64, 4)}  # the image and VIM's 4 maps
    (out,) = runner.outputs.values()
    assert tuple(out["shape"]) == (1, 64, 64) and out["dtype"] == np.int32


def test_vim_export_parity(vim_export):
    p = vim_export[0]["parity"]
    assert p["passed"] is True and p["compared"] == "labels_vim4" and p["vim_k"] == 4
    assert p["argmax_agreement"] == 1.0 and p["max_abs_diff"] is None  # the same program
    # vs the full upsample + argmax: this random model has 2 classes at low resolution in
    # every image (measured), K = 4 keeps both
    assert p["full_argmax_agreement"] == 1.0


@pytest.mark.parametrize(
    "arch, output, message",
    [
        (
            ARCH,
            "labels_vim151",
            "output: got 'labels_vim151'; allowed: an integer in [1, 150] (the model's classes)",
        ),
        (
            ARCH,
            "labels_vim0",
            "output: got 'labels_vim0'; allowed: logits, labels, probs, labels_vimK (labels by "
            "VIM, K in [1, 150])",
        ),
        (
            UNET,
            "labels_vim2",
            "output: got 'labels_vim2' for decoder 'unet'; allowed: VIM needs a decoder that "
            "returns its low-resolution logits: aam",
        ),
    ],
)
def test_bad_vim_output(tmp_path, arch, output, message):
    with pytest.raises(UserError) as e:
        export.export_candidate(
            arch, {}, tmp_path / "m.tflite", output=output, parity_inputs=np.zeros((8, 64, 64, 3))
        )
    assert str(e.value) == message
    assert list(tmp_path.iterdir()) == []


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--preset", "pp_mobileseg_tiny", "--vim", "16"],
            "--vim: got 16 with --output logits; allowed: 0 (off), or K with --output labels",
        ),
        (
            ["--preset", "pp_mobileseg_tiny", "--output", "labels", "--vim", "151"],
            "--vim: got 151; allowed: 0 (off) or an integer in [1, 150] (the model's classes)",
        ),
        (
            ["--preset", "pp_mobileseg_tiny", "--output", "labels", "--vim", "-1"],
            "--vim: got -1; allowed: 0 (off) or an integer in [1, 150] (the model's classes)",
        ),
        (
            ["--preset", "seed000_final", "--output", "labels", "--vim", "16"],
            "--vim: got 16 for decoder 'unet'; allowed: 0 (off); VIM needs a decoder that "
            "returns its low-resolution logits: aam",
        ),
    ],
)
def test_cli_bad_vim_exits_2_with_one_line(tmp_path, capsys, argv, message):
    code, stdout, stderr = _cli([*argv, "--out", tmp_path / "m.tflite"], capsys)
    assert (code, stdout) == (2, "")
    assert stderr == f"segnas export: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


def test_cli_vim_exports_labels_vimk(tmp_path, capsys, monkeypatch):
    # The flag's plumbing only (the export itself is tested above): what reaches the exporter.
    seen = {}

    def fake_export(arch, variables, out, **kwargs):
        seen.update(arch=arch, **kwargs)
        raise UserError("stop here")

    monkeypatch.setattr(export, "init_variables", lambda arch: {})
    monkeypatch.setattr(export, "export_candidate", fake_export)
    argv = ["--preset", "pp_mobileseg_base", "--output", "labels", "--vim", "16"]
    code, _, stderr = _cli([*argv, "--out", tmp_path / "m.tflite"], capsys)
    assert code == 2 and stderr == "segnas export: error: stop here\n"
    assert seen["output"] == "labels_vim16" and seen["arch"].num_classes == 150
