"""The predictor: block sum, calibration, and the error for unmeasured blocks."""

from __future__ import annotations

import pytest

from nas.errors import UserError
from nas.latency import load_table, missing_signatures, predict
from nas.latency.predictor import block_kind_sums, block_sum, build_command
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
    t.calibration = {"scale": 1.5, "offset_ms": 0.25}  # a table from before per-kind fits
    assert predict(TINY, t) == pytest.approx(1.5 * expected + 0.25, abs=1e-9)
    assert missing_signatures(TINY, t) == []


def test_predict_applies_the_fit_of_the_fold_that_left_the_arch_out():
    t = synthetic_table()
    sums = block_kind_sums(TINY, t)  # synthetic entries have no kind: the key's prefix
    assert sorted(sums) == [
        "CoarseBottleneck",
        "Conv",
        "ConvBNAct",
        "DecoderStage",
        "InvertedResidual",
        "UNetDecoder",
    ]
    total = sum(sums.values())
    assert total == pytest.approx(block_sum(TINY, t), abs=1e-9)
    everything = {"scale": 2.0, "coef": {}, "offset_ms": 0.0}  # unseen kinds: the scale
    fold = {"ids": [TINY.id], "scale": 1.0, "coef": {}, "offset_ms": 0.5}
    t.calibration = {**everything, "folds": [{"ids": ["other"], **everything}]}
    assert predict(TINY, t) == pytest.approx(2.0 * total, abs=1e-9)
    t.calibration = {**everything, "folds": [fold]}  # TINY was a calibration point
    assert predict(TINY, t) == pytest.approx(total + 0.5, abs=1e-9)


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
