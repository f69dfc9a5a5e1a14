"""experiments/common.py: the shared search section of the paper-table sweeps."""

from __future__ import annotations

import pytest

from experiments.common import search_section


def test_search_section_defaults_and_overrides():
    s = search_section("t", "grid", {"resolution": [[64, 64]]}, objectives=("val/miou", "macs"))
    assert (s.study_name, s.strategy, s.num_trials, s.seed) == ("t", "grid", 0, 0)
    assert tuple(s.objectives) == ("val/miou", "macs")
    assert s.max_params is None and s.winners.max_count == 0 and s.max_retry == 10


def test_search_section_refuses_an_unknown_field():
    with pytest.raises(ValueError, match=r"search_section: unknown field 'nope'; allowed: "):
        search_section("t", "grid", {}, nope=1)


def test_measured_latency_section_by_mode_and_output():
    from experiments.common import measured_latency_section

    full = measured_latency_section(False)
    assert full == dict(
        mode="measure", target="litert-cpu", threads=1, rounds=20, warmup=3, seed=0, table=""
    )
    smoke = measured_latency_section(True, "labels")
    assert (smoke["rounds"], smoke["warmup"], smoke["output"]) == (3, 1, "labels")
