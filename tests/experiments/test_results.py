"""README figures resolve to committed benchmark results, and the resolver catches bad markers.

Markers: `<!-- result: FILE KEY [fmt=SPEC] [scale=K] -->` (experiments/benchmarks/results.py).
No benchmark runs here: only the committed JSON files are read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from experiments.benchmarks import results
from experiments.benchmarks.results import (
    RESULTS_DIR,
    LoadMonitor,
    marker_errors,
    markers,
    parse_marker,
    read_figure,
    write_result,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_every_readme_marker_resolves_and_matches() -> None:
    text = README.read_text()
    assert markers(text), "README.md has no result markers"
    errors = marker_errors(text)
    assert not errors, "README figures out of step with their results:\n" + "\n".join(errors)


def test_readme_markers_say_how_the_figure_is_shown() -> None:
    # Without fmt= a marker only checks that the key exists: every README figure pins its text.
    loose = [m for m in markers(README.read_text()) if m["fmt"] is None]
    assert not loose, f"markers without fmt=: {loose}"


def test_every_result_file_has_the_common_keys() -> None:
    files = sorted(RESULTS_DIR.glob("*.json"))
    assert files, f"no result files in {RESULTS_DIR}"
    for path in files:
        data = json.loads(path.read_text())
        assert {"name", "figures", "params", "machine", "versions", "date"} <= set(data), path
        assert data["name"] == path.stem, path
        assert data["machine"]["cpu_count"] >= 1, path


def test_the_train_throughput_figure_others_use_exists() -> None:
    assert read_figure("train_throughput.json", "figures.images_per_s") > 0


def test_write_then_read(tmp_path: Path) -> None:
    path = write_result(
        "probe",
        {"speed": {"images_per_s": 12.5}, "runs": [1, 2]},
        params={"argv": ["--x"]},
        load_before=[0.5, 0.4, 0.3],
        results_dir=tmp_path,
    )
    assert path == tmp_path / "probe.json"
    data = json.loads(path.read_text())
    assert data["params"] == {"argv": ["--x"]}
    assert data["machine"]["loadavg_before"] == [0.5, 0.4, 0.3]
    assert data["versions"]["python"].startswith("3.")
    assert "jax" in data["versions"] and "segnas_commit" in data["versions"]
    assert data["date"].endswith("+00:00")
    assert read_figure("probe.json", "figures.speed.images_per_s", results_dir=tmp_path) == 12.5
    assert read_figure("probe.json", "figures.runs.1", results_dir=tmp_path) == 2
    assert not list(tmp_path.glob(".*tmp")), "a temporary file was left behind"


def test_bad_names_are_refused(tmp_path: Path) -> None:
    for name in ("a/b", "x.json", ""):
        with pytest.raises(ValueError):
            write_result(name, {}, results_dir=tmp_path)


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    write_result("r", {"ips": 35.27, "pct": 0.25, "n": 2971952, "s": "x"}, results_dir=tmp_path)
    return tmp_path


def test_good_markers_pass(probe_dir: Path) -> None:
    text = (
        "Throughput 35.3 images/s<!-- result: r.json figures.ips fmt=.1f -->, "
        "25 %<!-- result: r.json figures.pct fmt=.0f scale=100 --> within, "
        "| 2,971,952<!-- result: r.json figures.n fmt=, --> |\n"
        "no format: 7 <!-- result: r.json figures.ips -->"
    )
    assert marker_errors(text, results_dir=probe_dir) == []
    keys = [m["key"] for m in markers(text + " `<!-- result: quoted.json example -->`")]
    assert keys == ["figures.ips", "figures.pct", "figures.n", "figures.ips"]


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("35.3<!-- result: missing.json figures.ips fmt=.1f -->", "no result file"),
        ("35.3<!-- result: r.json figures.nope fmt=.1f -->", "no key 'nope' at figures"),
        ("35.3<!-- result: r.json figures.ips.deeper -->", "no key 'deeper' at figures.ips"),
        ("35.3<!-- result: r.json figures.s -->", "not a number"),
        ("35.3<!-- result: r.json -->", "expected 'FILE KEY"),
        ("35.3<!-- result: r.json figures.ips colour=red -->", "unknown option"),
        ("35.2<!-- result: r.json figures.ips fmt=.1f -->", "README shows 35.2, result is 35.3"),
        ("about <!-- result: r.json figures.ips fmt=.1f -->", "README shows no number"),
        ("25 %<!-- result: r.json figures.pct fmt=.0f -->", "README shows 25, result is 0"),
    ],
)
def test_bad_markers_are_reported(probe_dir: Path, marker: str, message: str) -> None:
    text = f"# Title\n\nA figure: {marker}\n"
    errors = marker_errors(text, results_dir=probe_dir)
    assert len(errors) == 1, errors
    assert errors[0].startswith("line 3: <!-- result:"), errors
    assert message in errors[0], errors


def test_parse_marker_defaults() -> None:
    assert parse_marker("f.json figures.a") == {
        "file": "f.json",
        "key": "figures.a",
        "fmt": None,
        "scale": 1.0,
    }
    assert parse_marker("f.json k fmt=.2f scale=1e-3")["scale"] == 0.001


def test_load_monitor_samples_until_the_block_ends(tmp_path: Path) -> None:
    with LoadMonitor(interval_s=0.01) as load:
        time.sleep(0.1)
    summary = load.summary()
    assert summary is not None and summary["samples"] >= 2
    assert summary["max_1min"] >= summary["mean_1min"] >= 0
    count = summary["samples"]
    time.sleep(0.05)
    assert len(load.samples) == count, "still sampling after the block"
    path = write_result("probe", {}, load_during=summary, results_dir=tmp_path)
    assert json.loads(path.read_text())["machine"]["loadavg_during"] == summary


def test_results_dir_is_in_the_repo() -> None:
    assert RESULTS_DIR == ROOT / "experiments" / "benchmarks" / "results"
    assert results.ROOT == ROOT
