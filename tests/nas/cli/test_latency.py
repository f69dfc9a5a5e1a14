"""`segnas latency ...`: every bad input is one line and exit 2; builds resume; end to end."""

from __future__ import annotations

import json

import pytest

from nas.cli.main import main
from nas.latency import build as build_mod
from nas.latency import load_table, measure
from tests.nas.latency.helpers import TINY, synthetic_table


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["latency", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _error(capsys, *argv: str) -> str:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("segnas latency: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(TINY.to_json())
    return path


def test_predict_prints_the_calibrated_value(tmp_path, capsys, arch_file):
    t = synthetic_table()
    t.calibration = {"scale": 2.0, "offset_ms": 1.0}
    t.save(tmp_path / "t.json")
    code, out, _ = _run(
        capsys, "predict", "--arch", str(arch_file), "--table", str(tmp_path / "t.json"), "--json"
    )
    assert code == 0
    result = json.loads(out)
    assert result["predicted_ms"] == pytest.approx(2 * result["block_sum_ms"] + 1, abs=1e-3)
    assert result["arch_id"] == TINY.id and result["target"] == "litert-cpu"
    code, out, _ = _run(
        capsys, "predict", "--arch", str(arch_file), "--table", str(tmp_path / "t.json"), "--blocks"
    )
    assert (
        code == 0
        and "encoder/stem" in out
        and out.strip().endswith(f"block sum {result['block_sum_ms']:.3f} ms")
    )


def test_predict_with_missing_blocks(tmp_path, capsys, arch_file):
    synthetic_table(skip=3).save(tmp_path / "t.json")
    line = _error(capsys, "predict", "--arch", str(arch_file), "--table", str(tmp_path / "t.json"))
    assert "3 block signature(s) of arch" in line and "ConvBNAct@1x32x32x3#" in line
    assert line.endswith(
        f"segnas latency build --target litert-cpu --threads 1 --arch "
        f"{arch_file} --out {tmp_path / 't.json'}"
    )


def test_bad_files(tmp_path, capsys, arch_file):
    (tmp_path / "bad.json").write_text('{"schema": "segnas.latency_table/1", "entr')
    assert "malformed JSON" in _error(
        capsys, "predict", "--arch", str(arch_file), "--table", str(tmp_path / "bad.json")
    )
    assert "table: file" in _error(
        capsys, "predict", "--arch", str(arch_file), "--table", str(tmp_path / "none.json")
    )
    synthetic_table().save(tmp_path / "t.json")
    assert "arch: file" in _error(
        capsys, "predict", "--arch", str(tmp_path / "no.json"), "--table", str(tmp_path / "t.json")
    )
    assert "manifest: file" in _error(
        capsys,
        "import",
        "--manifest",
        str(tmp_path / "m.json"),
        "--results",
        "r.txt",
        "--out",
        str(tmp_path / "o.json"),
    )
    assert not (tmp_path / "o.json").exists()
    assert "config: " in _error(
        capsys, "build", "--config", str(tmp_path / "nope.py"), "--out", str(tmp_path / "b.json")
    )
    assert not (tmp_path / "b.json").exists()


def test_foreign_table_is_refused_before_measuring(tmp_path, capsys):
    t = synthetic_table()
    t.environment = {**t.environment, "device": "Pixel 7"}
    t.save(tmp_path / "t.json")
    line = _error(capsys, "validate", "--n", "2", "--table", str(tmp_path / "t.json"))
    assert "measured in another environment than this machine (device: 'Pixel 7' vs" in line
    assert "--allow-foreign" in line
    line = _error(
        capsys, "validate", "--threads", "2", "--n", "2", "--table", str(tmp_path / "t.json")
    )
    assert "allowed: a table for --target litert-cpu --threads 2" in line


def test_bad_arguments(tmp_path, capsys, arch_file):
    assert "target: got 'tpu'" in _error(
        capsys,
        "build",
        "--target",
        "tpu",
        "--arch",
        str(arch_file),
        "--out",
        str(tmp_path / "t.json"),
    )
    assert "got '--bogus'" in _error(capsys, "predict", "--preset", "seed000_baseline", "--bogus")
    # an unknown target is named, not reported as a missing latency_tables/pixel9_t1.json
    assert _error(capsys, "predict", "--preset", "seed000_baseline", "--target", "pixel9").endswith(
        "--target: got 'pixel9'; allowed: litert-cpu, jax-cpu, jax-gpu, or --table PATH for a "
        "device's table (segnas latency import)"
    )
    assert "required" in _error(capsys, "build")
    assert "invalid choice" in _error(capsys, "frobnicate")
    if measure.clock_name("jax-gpu", 1) and not _has_gpu():
        assert "JAX sees no GPU" in _error(
            capsys,
            "build",
            "--target",
            "jax-gpu",
            "--arch",
            str(arch_file),
            "--out",
            str(tmp_path / "g.json"),
        )
        assert not (tmp_path / "g.json").exists()


def _has_gpu() -> bool:
    import jax

    return jax.default_backend() == "gpu"


def test_build_resumes_after_a_kill(tmp_path, monkeypatch):
    calls, kill = [], [True]
    real = measure.measure

    def dies_on_second_chunk(timers, *a, **k):
        calls.append(len(timers))
        if kill[0] and len(calls) == 2:
            raise KeyboardInterrupt  # killed while the 2nd chunk was in flight
        return real(timers, *a, **k)

    monkeypatch.setattr(measure, "measure", dies_on_second_chunk)
    settings = {"rounds": 2, "warmup": 1, "chunk": 5}
    out = tmp_path / "t.json"
    with pytest.raises(KeyboardInterrupt):
        build_mod.build_table([TINY], out, measure_settings=settings, progress=False)
    partial = load_table(out)
    assert len(partial.entries) == 5  # the first chunk, saved; nothing half-written
    assert partial.complete is False and json.loads(out.read_text())["complete"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
    calls.clear()
    kill[0] = False
    table = build_mod.build_table(
        [TINY], out, measure_settings=settings, calibration={"n": 1}, progress=False
    )
    # the 12 missing signatures, then the calibration model; each chunk + the reference
    assert calls == [6, 6, 3, 2]
    assert len(table.entries) == 17 and table.calibration["n"] == 1
    assert load_table(out).complete is True
    assert table.reference["median_ms"] > 0 and table.reference["arch"]["resolution"] == [128, 128]
    calls.clear()
    build_mod.build_table(
        [TINY], out, measure_settings=settings, calibration={"n": 1}, progress=False
    )
    assert calls == []  # complete: nothing is measured again


@pytest.mark.slow
def test_smoke_config_end_to_end(tmp_path, capsys, arch_file):
    out = tmp_path / "t.json"
    code, stdout, _ = _run(
        capsys,
        "build",
        "--config",
        "experiments/latency_cpu.py:smoke",
        "--out",
        str(out),
        "--config.calibration.n=1",
    )
    assert code == 0
    built = json.loads(stdout)
    assert built["entries"] == 20 and built["measured_now"] == 20
    assert built["calibration"]["n"] == 1
    table = load_table(out)
    assert table.space["resolution"] == [[64, 64]] and table.settings["rounds"] == 5
    code, stdout, _ = _run(
        capsys,
        "validate",
        "--n",
        "1",
        "--table",
        str(out),
        "--json",
        "--plot",
        str(tmp_path / "v.png"),
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["n"] == 1 and set(result) >= {
        "within_5pct",
        "within_10pct",
        "median_abs_pct_error",
        "max_abs_pct_error",
        "repeatability",
        "rows",
    }
    assert result["rows"][0]["id"] not in [p["id"] for p in table.calibration["points"]]
    # the one arch was measured twice (--repeat defaults to 25, capped by --n)
    assert result["repeatability"]["n"] == 1 and "measured_again_ms" in result["rows"][0]
    code, stdout, _ = _run(capsys, "validate", "--n", "1", "--table", str(out), "--repeat", "0")
    assert code == 0 and "within_5pct: " in stdout and "repeatability" not in stdout
    assert (tmp_path / "v.png").read_bytes()[:4] == b"\x89PNG"
    line = _error(capsys, "validate", "--n", "5", "--table", str(out))
    assert "the space has only 1 archs outside the 1 calibration archs" in line
    line = _error(capsys, "validate", "--n", "1", "--table", str(out), "--repeat", "-1")
    assert line.endswith("repeat: got -1; allowed: an integer >= 0")


def test_merge_command(tmp_path, capsys):
    a, b = synthetic_table(skip=5), synthetic_table()
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    code, out, _ = _run(
        capsys,
        "merge",
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
        "--out",
        str(tmp_path / "c.json"),
    )
    assert code == 0 and json.loads(out)["entries"] == len(b.entries)
    b.environment = {**b.environment, "threads": 4}
    b.save(tmp_path / "b.json")
    assert "threads: 1 vs 4" in _error(
        capsys,
        "merge",
        str(tmp_path / "a.json"),
        str(tmp_path / "b.json"),
        "--out",
        str(tmp_path / "d.json"),
    )
    assert not (tmp_path / "d.json").exists()


def test_export_bench_then_import(tmp_path, capsys, arch_file):
    code, out, _ = _run(
        capsys, "export-bench", "--arch", str(arch_file), "--out", str(tmp_path / "phone")
    )
    assert code == 0 and json.loads(out) == {
        "dir": str(tmp_path / "phone"),
        "blocks": 17,
        "models": 1,
    }
    manifest = json.loads((tmp_path / "phone" / "manifest.json").read_text())
    names = [f["file"] for f in manifest["blocks"]] + [m["file"] for m in manifest["models"]]
    results = "".join(
        f"INFO: Graph: [{n}]\nINFO: #threads used for CPU inference: [1]\n"
        f"INFO: count=50 first=9 curr=9 min=8 max=12 avg=9.5 std=1 p5=8 "
        f"median=9 p95=11\n"
        for n in names[:-1]
    )
    results += (
        f"INFO: Graph: [{names[-1]}]\nINFO: count=50 first=300 curr=290 min=280 "
        f"max=320 avg=295 std=5 p5=285 median=290 p95=310\n"
    )
    (tmp_path / "results.txt").write_text(results)
    argv = [
        "import",
        "--manifest",
        str(tmp_path / "phone" / "manifest.json"),
        "--results",
        str(tmp_path / "results.txt"),
        "--device",
        "Pixel 7",
        "--out",
    ]
    code, out, _ = _run(capsys, *argv, str(tmp_path / "phone.json"))
    assert code == 0
    assert json.loads(out) == {
        "table": str(tmp_path / "phone.json"),
        "entries": 17,
        "missing": 0,
        "calibrated": True,
    }
    code, out, _ = _run(
        capsys,
        "predict",
        "--arch",
        str(arch_file),
        "--table",
        str(tmp_path / "phone.json"),
        "--json",
    )
    assert code == 0 and json.loads(out)["predicted_ms"] == pytest.approx(0.29)
    assert json.loads(out)["device"] == "Pixel 7"
    # importing into a table of another device is refused
    synthetic_table().save(tmp_path / "cpu.json")
    assert "measured in another environment" in _error(capsys, *argv, str(tmp_path / "cpu.json"))
    assert "results: cannot read" in _error(
        capsys,
        "import",
        "--manifest",
        str(tmp_path / "phone" / "manifest.json"),
        "--results",
        str(tmp_path / "none.txt"),
        "--out",
        str(tmp_path / "x.json"),
    )
