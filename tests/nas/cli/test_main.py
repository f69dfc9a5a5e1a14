"""`segnas cost` / `segnas presets`: the JSON contract and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cost_json_contract(capsys):
    code, out, err = run(capsys, "cost", "--preset", "seed000_final", "--json")
    assert code == 0 and err == ""
    d = json.loads(out)
    # Deployed: without the coarse head (112*2 + 2 = 226 params, 16*16*112*2 = 57,344 MACs),
    # which params_train / macs_train keep (4,369,380 / 3,243,223,040).
    params, macs = 4_369_380 - 226, 3_243_223_040 - 57_344
    assert (d["params"], d["macs"], d["bytes_fp32"]) == (params, macs, 4 * params)
    assert (d["params_train"], d["macs_train"]) == (4_369_380, 3_243_223_040)
    assert all(
        isinstance(d[k], int)
        for k in ("params", "macs", "bytes_fp32", "params_train", "macs_train")
    )
    assert d["arch"]["encoder"]["name"] == "efficientnet_lite0"


def test_cost_overrides_and_arch_file(capsys, tmp_path):
    f = tmp_path / "a.json"
    f.write_text(
        json.dumps(
            {
                "encoder": "mobilenet_v3_small",
                "decoder": "classifier",
                "resolution": [224, 224],
                "num_classes": 1000,
            }
        )
    )
    code, out, _ = run(capsys, "cost", "--arch", str(f), "--json")
    assert code == 0 and json.loads(out)["params"] == 2_542_856
    code, out, _ = run(capsys, "cost", "--arch", str(f), "--num-classes", "10", "--json")
    assert json.loads(out)["params"] == 2_542_856 - 1024 * 990 - 990
    code, out, _ = run(
        capsys, "cost", "--preset", "seed000_baseline", "--resolution", "512", "512", "--json"
    )
    assert json.loads(out)["resolution"] == [512, 512]


def test_cost_table_is_readable(capsys):
    code, out, _ = run(capsys, "cost", "--preset", "mobilenet_v3_large_imagenet")
    assert code == 0
    assert "params                    5,483,032" in out and "(0.217 G)" in out
    assert "params_train" not in out  # a classifier has no auxiliary head: nothing to add


def test_cost_table_shows_the_train_counts_where_they_differ(capsys):
    code, out, _ = run(capsys, "cost", "--preset", "seed000_final")
    assert code == 0
    assert "params                    4,369,154" in out  # 4,369,380 - 226 (the coarse head)
    assert "params_train              4,369,380 (with auxiliary heads)" in out
    assert "macs_train                3,243,223,040" in out


def _write(tmp_path: Path, text: str) -> str:
    f = tmp_path / "arch.json"
    f.write_text(text)
    return str(f)


@pytest.mark.parametrize(
    "content,expected",
    [
        (
            '{"encoder": "resnet50", "decoder": "mlp"}',
            "encoder.name: got 'resnet50'; allowed: mobilenet_v3_large",
        ),
        (
            '{"encoder": "mobilenet_v3_large", "decoder": "mlp", "width": 0}',
            "encoder.width: got 0; allowed: a number in (0, 4]",
        ),
        (
            '{"encoder": "mobilenet_v3_large", "decoder": "mlp", "width": -0.5}',
            "encoder.width: got -0.5; allowed: a number in (0, 4]",
        ),
        (
            '{"encoder": "mobilenet_v3_large", "decoder": "mlp", "resolution": [20, 256]}',
            "resolution: got [20, 256]; allowed: height and width >= the output stride 32",
        ),
        ('{"encoder": "mobilenet_v3_large", "decoder": "mlp",', "arch JSON: malformed"),
    ],
)
def test_cost_bad_arch_files(capsys, tmp_path, content, expected):
    code, out, err = run(capsys, "cost", "--arch", _write(tmp_path, content))
    assert code == 2 and out == ""
    assert err.startswith("segnas cost: error: " + expected), err
    assert err.count("\n") == 1  # one line


def test_cost_other_user_errors(capsys, tmp_path):
    code, _, err = run(capsys, "cost", "--arch", str(tmp_path / "missing.json"))
    assert code == 2 and "arch: file" in err and "not found" in err
    code, _, err = run(capsys, "cost", "--preset", "nope")
    assert code == 2 and "preset: got 'nope'; allowed: seed000_baseline" in err
    code, _, err = run(capsys, "cost")
    assert code == 2 and "one of the arguments --preset --arch is required" in err
    code, _, err = run(capsys, "cost", "--preset", "seed000_final", "--resolution", "16", "16")
    assert code == 2 and "resolution: got [16, 16]; allowed: height and width >= the" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "command: got 'frobnicate'; allowed: presets, cost" in err


def test_presets_lists_everything(capsys):
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "seed000_final" in out and "seed000" in out
    code, out, _ = run(capsys, "presets", "--json")
    d = json.loads(out)
    assert d["presets"]["lraspp_mobilenet_v3_large"]["output_stride"] == 16
    assert d["spaces"]["seed000"]["encoder"]["width"] == [1.0, 1.5, 2.0]


def test_console_script_no_traceback_on_user_error(tmp_path):
    exe = Path(sys.executable).with_name("segnas")
    bad = _write(tmp_path, "not json")
    p = subprocess.run(
        [str(exe), "cost", "--arch", bad],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("segnas cost: error: arch JSON: malformed")
