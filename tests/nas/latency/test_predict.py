"""The predictor: block sum, calibration, and the error for unmeasured blocks."""

from __future__ import annotations

import re

import pytest

from nas.errors import UserError
from nas.latency import load_table, missing_signatures, predict
from nas.latency.predictor import block_sum, build_command, fit_calibration
from tests.nas.latency.helpers import TINY, synthetic_table, tiny_keys


def test_predict_is_the_calibrated_block_sum():
    keys = tiny_keys()
    t = synthetic_table()
    distinct = list(dict.fromkeys(keys))
    value = {k: (i + 1) * 0.01 for i, k in enumerate(distinct)}
    expected = sum(value[k] for k in keys)  # repeated signatures count each time
    assert len(keys) == 19 and len(distinct) == 17  # pinned decomposition of TINY
    assert block_sum(TINY, t) == pytest.approx(expected, abs=1e-9)
    assert predict(TINY, t) == pytest.approx(expected, abs=1e-9)  # no calibration yet
    t.calibration = {"scale": 1.5, "offset_ms": 0.25}
    assert predict(TINY, t) == pytest.approx(1.5 * expected + 0.25, abs=1e-9)
    assert missing_signatures(TINY, t) == []


def test_missing_signatures_are_listed_with_the_command(tmp_path):
    t = synthetic_table(skip=2)
    t.save(tmp_path / "t.json")
    t = load_table(tmp_path / "t.json")
    missing = missing_signatures(TINY, t)
    assert missing == list(dict.fromkeys(tiny_keys()))[:2]
    with pytest.raises(UserError) as e:
        predict(TINY, t, arch_file="my_arch.json")
    msg = str(e.value)
    assert f"2 block signature(s) of arch {TINY.id} not measured: " in msg
    assert all(k in msg for k in missing) and "\n" not in msg
    assert msg.endswith(
        f"measure them with: segnas latency build --target litert-cpu "
        f"--threads 1 --arch my_arch.json --out {tmp_path / 't.json'}"
    )


def test_device_tables_point_to_export_bench():
    t = synthetic_table(skip=1)
    t.environment = {**t.environment, "target": "benchmark_model"}
    assert build_command(t).startswith("segnas latency export-bench --arch ARCH.json")
    with pytest.raises(UserError, match="segnas latency import --manifest"):
        predict(TINY, t)


def test_fit_calibration_recovers_a_line():
    sums = [1.0, 2.0, 5.0, 10.0]
    fit = fit_calibration(sums, [1.1 * s + 0.2 for s in sums])
    assert fit == {"scale": 1.1, "offset_ms": 0.2, "n": 4, "max_abs_pct_residual": 0.0}
    # relative weighting: a 10 % miss on a small model costs as much as on a large one
    fit = fit_calibration([1.0, 10.0, 100.0], [1.0, 10.0, 110.0])
    assert re.fullmatch(r"\d+\.\d+", str(fit["max_abs_pct_residual"]))
    assert fit["max_abs_pct_residual"] < 10.0


def test_fit_calibration_single_point_and_errors():
    assert fit_calibration([2.0], [3.0]) == {
        "scale": 1.5,
        "offset_ms": 0.0,
        "n": 1,
        "max_abs_pct_residual": 0.0,
    }
    with pytest.raises(UserError, match="got 0 block sums and 0 measurements"):
        fit_calibration([], [])
    with pytest.raises(UserError, match="got 2 block sums and 1 measurements"):
        fit_calibration([1.0, 2.0], [1.0])
    with pytest.raises(UserError, match="non-positive latency"):
        fit_calibration([1.0, 2.0], [1.0, 0.0])
