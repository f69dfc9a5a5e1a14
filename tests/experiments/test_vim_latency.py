"""experiments/benchmarks/vim_latency.py: its quick mode runs end to end (PP-MobileSeg-Tiny at
64 x 64, 150 classes only) and writes nothing; its criteria read the issue's bar."""

from __future__ import annotations

import re

from experiments.benchmarks import vim_latency


def test_quick_mode_runs_and_writes_nothing(capsys, monkeypatch):
    written = []
    monkeypatch.setattr(vim_latency, "write_result", lambda *a, **k: written.append(a))
    assert vim_latency.main(["--quick", "--classes", "150"]) == 0
    out = capsys.readouterr().out
    line = re.fullmatch(
        r"pp_mobileseg_tiny C=150: full ([0-9.]+) ms, vim ([0-9.]+) ms, network ([0-9.]+) ms; "
        r"speedup (-?[0-9.]+) %, share (-?[0-9.]+) %",
        out.splitlines()[0],
    )
    assert line is not None, out
    full, vim, network = (float(line.group(i)) for i in (1, 2, 3))
    assert 0 < network < full and 0 < vim
    assert "criteria: {'pp_mobileseg_tiny.c150_speedup_ge_30pct': " in out
    assert written == []


def test_criteria_thresholds():
    figures = {
        "a": {"c150": {"speedup": 0.30, "share": 0.399}, "c19": {"speedup": 0.099}},
        "b": {"c150": {"speedup": 0.299, "share": 0.40}, "c19": {"speedup": 0.10}},
    }
    assert vim_latency.criteria(figures) == {
        "a.c150_speedup_ge_30pct": True,
        "a.c150_share_ge_40pct": False,
        "a.c19_no_gain": True,
        "b.c150_speedup_ge_30pct": False,
        "b.c150_share_ge_40pct": True,
        "b.c19_no_gain": False,
    }
