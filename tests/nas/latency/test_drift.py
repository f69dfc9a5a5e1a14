"""The reference program: timed in every chunk, it puts every figure on the table's scale."""

from __future__ import annotations

import pytest

from nas.latency import build, context, measure
from tests.nas.latency.helpers import TINY


def test_measure_chunk_times_the_reference_beside_the_programs():
    samples, ref = measure.measure_chunk(
        {"a": lambda: 0.002, "b": lambda: 0.001}, rounds=3, warmup=0, reference=lambda: 0.004
    )
    assert samples == {"a": [2.0] * 3, "b": [1.0] * 3} and ref == 4.0
    assert measure.measure_chunk({"a": lambda: 0.002}, rounds=1, warmup=0)[1] is None


def test_rescale_by_hand():
    # the reference took 3 ms when the table was made, 4 ms now: the machine is slower now
    assert context.rescale([2.0, 4.0], 3.0, 4.0) == [1.5, 3.0]
    assert context.rescale([2.0], None, 4.0) == [2.0] and context.rescale([2.0], 3.0, None) == [2.0]


def test_a_table_built_while_the_machine_slows_down_stays_on_one_scale(tmp_path, monkeypatch):
    """Every block takes 1 ms at full speed; the machine runs at half speed from the second
    chunk on. The reference shows it, and the second chunk's blocks are scaled back to 1 ms."""
    chunks = []

    def fake_measure(timers, rounds, warmup, seed, window_s):
        assert window_s == 1.0  # build's default measure.WINDOW_S
        slow = 2.0 if chunks else 1.0
        chunks.append(len(timers))
        return {k: [slow * 1.0] * rounds for k in timers}

    monkeypatch.setattr(measure, "measure", fake_measure)
    monkeypatch.setattr(measure, "make_timer", lambda *a, **k: lambda: 0.0)
    monkeypatch.setattr(context, "reference_timer", lambda *a: lambda: 0.0)
    table = build.build_table(
        [TINY],
        tmp_path / "t.json",
        measure_settings={"rounds": 2, "warmup": 0, "chunk": 10},
        calibration={"n": 0},
        progress=False,
    )
    assert chunks == [11, 8]  # 17 signatures in chunks of 10 and 7, each + the reference
    assert table.reference["median_ms"] == 1.0
    medians = sorted(e["median_ms"] for e in table.entries.values())
    raws = sorted(e["raw_median_ms"] for e in table.entries.values())
    assert medians == [1.0] * 17
    assert raws == [1.0] * 10 + [2.0] * 7
    assert {e["reference_ms"] for e in table.entries.values()} == {1.0, 2.0}


def test_merging_tables_puts_the_others_entries_on_this_scale():
    from tests.nas.latency.helpers import synthetic_table

    mine, other = synthetic_table(skip=5), synthetic_table()
    mine.reference = {"median_ms": 3.0}
    other.reference = {"median_ms": 6.0}  # measured while the machine was twice as slow
    key = next(k for k in other.entries if k not in mine.entries)
    before = other.entries[key]["median_ms"]
    mine.merge(other)
    assert mine.entries[key]["median_ms"] == pytest.approx(before / 2, abs=1e-6)


def test_a_table_build_traces_each_arch_once(tmp_path, monkeypatch):
    """Collecting blocks and fitting the calibration both need an arch's signatures: the
    second asks the cache the first filled (tracing a model is ~2 s of a build's time)."""
    from nas.latency import blocks, predictor
    from tests.nas.latency.helpers import TINY

    traced = []

    def counting(arch, output="logits"):
        traced.append(arch.id)
        return real(arch, output)

    real = blocks.decompose
    monkeypatch.setattr(build, "decompose", counting)
    monkeypatch.setattr(predictor, "decompose", counting)
    monkeypatch.setattr(predictor, "_SIGNATURES", {})
    monkeypatch.setattr(measure, "measure", lambda t, rounds, *a: {k: [1.0] * rounds for k in t})
    monkeypatch.setattr(measure, "make_timer", lambda *a, **k: lambda: 0.0)
    monkeypatch.setattr(context, "reference_timer", lambda *a: lambda: 0.0)
    build.build_table(
        [TINY],
        tmp_path / "t.json",
        measure_settings={"rounds": 2, "warmup": 0, "chunk": 10},
        calibration={"n": 1},
        progress=False,
    )
    assert traced == [TINY.id]
