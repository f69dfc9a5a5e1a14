"""Device tables: export of the micro-benchmarks, and parsing LiteRT benchmark_model output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.errors import UserError
from nas.latency import bench_export
from nas.latency.build import collect_blocks
from nas.latency.predictor import predict, signatures
from tests.nas.latency.helpers import TINY

FIXTURE = Path(__file__).parent / "fixtures" / "benchmark_model_output.txt"


def test_parse_recorded_benchmark_model_output():
    runs = bench_export.parse_results(FIXTURE.read_text())
    # the 4th run failed ("Failed to allocate tensors"): no timing, so no entry
    assert sorted(runs) == [
        "b0000_ConvBNAct_584e599c8c.tflite",
        "b0001_InvertedResidual_d551ea92f6.tflite",
        "b0002_Seed000Decoder_a2924e05a0.tflite",
    ]
    # newer tools: the timed run's `median=` (not the warm-up's count=3862 line)
    assert runs["b0000_ConvBNAct_584e599c8c.tflite"] == {
        "threads": 1,
        "n": 7937,
        "median_ms": 0.123,
        "avg_ms": 0.12461,
        "std_ms": 0.009,
        "min_ms": 0.116,
        "max_ms": 0.412,
        "p5_ms": 0.118,
        "p95_ms": 0.136,
    }
    # older tools print no percentiles: avg=
    old = runs["b0001_InvertedResidual_d551ea92f6.tflite"]
    assert old["median_ms"] == pytest.approx(0.2213) and old["n"] == 4472
    assert "p5_ms" not in old
    # identical samples: `count=50 curr=36(all same)`
    same = runs["b0002_Seed000Decoder_a2924e05a0.tflite"]
    assert same["median_ms"] == pytest.approx(0.036) and same["n"] == 50


def test_summary_line_is_the_fallback():
    text = (
        "INFO: Graph: [/x/a.tflite]\nINFO: Num threads: [4]\n"
        "INFO: Inference timings in us: Init: 3179, First inference: 184, "
        "Warmup (avg): 127.96, Inference (avg): 124.61\n"
    )
    assert bench_export.parse_results(text) == {
        "a.tflite": {"threads": 4, "n": 1, "median_ms": pytest.approx(0.12461)}
    }


def test_not_benchmark_model_output():
    with pytest.raises(UserError, match="results: no `Graph: \\[...\\]` line found"):
        bench_export.parse_results("hello\nworld\n")


def _run(name: str, us: float, threads: int = 1) -> str:
    """One run of benchmark_model's output, in its real format."""
    return (
        f"INFO: STARTING!\nINFO: Num threads: [{threads}]\nINFO: Graph: [{name}]\n"
        f"INFO: #threads used for CPU inference: [{threads}]\n"
        f"INFO: count=12 first={us * 1.5:.0f} curr={us:.0f} min={us:.0f} max={us * 2:.0f} "
        f"avg={us * 1.1:.1f} std=3\n\n"
        f"INFO: count=50 first={us:.0f} curr={us:.0f} min={us * 0.9:.0f} "
        f"max={us * 1.2:.0f} avg={us * 1.02:.1f} std=2 p5={us * 0.95:.0f} "
        f"median={us:.0f} p95={us * 1.1:.0f}\n\n"
        f"INFO: Inference timings in us: Init: 900, First inference: {us * 1.5:.0f}, "
        f"Warmup (avg): {us * 1.1:.1f}, Inference (avg): {us * 1.02:.1f}\n"
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    blocks = collect_blocks([TINY], "logits", progress=False)
    out = tmp_path_factory.mktemp("bench") / "phone"
    bench_export.export_bench(blocks, [TINY], out, threads=1, progress=False)
    return out, blocks


def test_export_bench_writes_models_manifest_and_instructions(exported):
    out, blocks = exported
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"] == "segnas.latency_manifest/1"
    assert [f["key"] for f in manifest["blocks"]] == list(blocks)
    assert len(manifest["blocks"]) == 17 and manifest["models"][0]["id"] == TINY.id
    files = sorted(p.name for p in out.iterdir())
    assert len([f for f in files if f.endswith(".tflite")]) == 18
    assert {"manifest.json", "README.md", "run_all.sh"} <= set(files)
    readme = (out / "README.md").read_text()
    assert "--num_threads=1 --num_runs=50 --warmup_runs=10 --use_xnnpack=true" in readme
    assert "adb push phone /data/local/tmp/segnas_bench" in readme
    assert "segnas latency import --manifest phone/manifest.json" in readme
    assert (out / manifest["blocks"][0]["file"]).read_bytes()[4:8] == b"TFL3"


def test_export_bench_refuses_an_existing_dir_and_leaves_nothing_on_failure(
    tmp_path, exported, monkeypatch
):
    out, blocks = exported
    with pytest.raises(UserError, match="already exists; allowed: a new directory"):
        bench_export.export_bench(blocks, [], out, progress=False)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_export, "_convert", boom)
    with pytest.raises(KeyboardInterrupt):
        bench_export.export_bench(blocks, [], tmp_path / "new", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_import_builds_a_calibrated_device_table(exported):
    out, blocks = exported
    manifest = bench_export.load_manifest(out / "manifest.json")
    text = "".join(
        _run(f"/data/local/tmp/segnas_bench/{f['file']}", 100.0 + 10 * i)
        for i, f in enumerate(manifest["blocks"])
    )
    text += _run(f"/data/local/tmp/segnas_bench/m_{TINY.id}.tflite", 2500.0)
    table, missing = bench_export.import_results(
        manifest, bench_export.parse_results(text), "Pixel 7", "2.16"
    )
    assert missing == []
    assert table.environment["target"] == "benchmark_model"
    assert table.environment["device"] == "Pixel 7" and table.environment["threads"] == 1
    assert table.environment["runtime"]["benchmark_model"] == "2.16"
    first = table.entries[manifest["blocks"][0]["key"]]
    assert first["median_ms"] == 0.1 and first["p95_ms"] == 0.11 and first["n"] == 50
    sums = sum(table.entries[k]["median_ms"] for k in signatures(TINY))
    assert table.calibration["points"][0]["block_sum_ms"] == pytest.approx(sums)
    # the host's fit: one scale per block kind, on the phone's own whole-model timing
    assert table.calibration["model"] == "per-kind" and table.calibration["n"] == 1
    assert set(table.calibration["coef"]) == set(table.calibration["points"][0]["kind_sums_ms"])
    assert predict(TINY, table) == pytest.approx(2.5)  # one point: exact ratio


def test_import_errors(exported):
    out, _ = exported
    manifest = bench_export.load_manifest(out / "manifest.json")
    files = [f["file"] for f in manifest["blocks"]]
    with pytest.raises(UserError, match="run of 'other.tflite' is not in the manifest"):
        bench_export.import_results(
            manifest, bench_export.parse_results(_run("other.tflite", 5.0)), "Pixel 7"
        )
    mixed = bench_export.parse_results(_run(files[0], 5.0, 1) + _run(files[1], 5.0, 4))
    with pytest.raises(UserError, match=r"different thread counts \[1, 4\]"):
        bench_export.import_results(manifest, mixed, "Pixel 7")
    table, missing = bench_export.import_results(
        manifest, bench_export.parse_results(_run(files[0], 5.0)), "Pixel 7"
    )
    assert len(table.entries) == 1 and len(missing) == 17 and table.calibration is None


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "manifest: file .* not found"),
        ("{", r"manifest: cannot read .* \(JSONDecodeError\)"),
        ('{"schema": "x"}', "manifest .*: schema got 'x'; allowed: 'segnas.latency_manifest/1'"),
    ],
)
def test_bad_manifest(tmp_path, content, message):
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message):
        bench_export.load_manifest(path)
