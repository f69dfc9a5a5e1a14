"""experiments/benchmarks/paper_tables.py's seed 002 entries: each names a table config with a
latency column, and a row's own latency output (VIM) reaches the figures it records."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from experiments.benchmarks import paper_tables
from nas import tables
from nas.config import load_config

ROOT = Path(__file__).resolve().parents[2]

SEED002 = {
    "seed002_table1": "experiments/seed002/table1.py",
    "seed002_table2": "experiments/seed002/table2.py",
    "seed002_table3": "experiments/seed002/table3.py",
    "seed002_table1_smoke": "experiments/seed002/table1.py:smoke",
    "seed002_table2_smoke": "experiments/seed002/table2.py:smoke",
    "seed002_table3_smoke": "experiments/seed002/table3.py:smoke",
}


def test_the_seed002_entries():
    assert {k: v for k, v in paper_tables.TABLES.items() if k.startswith("seed002")} == SEED002
    assert paper_tables.DEFAULT_TABLES == ("table1", "table3")  # the default run is unchanged


@pytest.mark.parametrize("name", sorted(SEED002))
def test_each_entry_times_its_rows(name):
    spec = tables.parse_table(load_config(str(ROOT / SEED002[name])).table)
    assert [c.key for c in spec.columns if c.kind == "latency"] == ["latency"]
    assert spec.latency["mode"] == "measure" and spec.latency["threads"] == 1
    assert spec.latency["rounds"] == (3 if name.endswith("_smoke") else 20)


def test_a_rows_own_output_is_recorded(monkeypatch):
    """`segnas table` faked: it writes a table.csv as nas.tables does for Table 3 (two models,
    each through the plain argmax and through VIM)."""
    spec = tables.parse_table(load_config(str(ROOT / SEED002["seed002_table3_smoke"])).table)
    built = [r for r in spec.rows if r.arch is not None]
    ms = {"labels": 40.0, "labels_vim16": 10.0}

    def run(cmd, **kw):
        out = Path(cmd[cmd.index("--out") + 1])
        fields = ["group", "row", "arch_id", "status", "latency.segnas", "latency.segnas_ms"]
        with (out / "table.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=[*fields, "latency.output"])
            w.writeheader()
            for r in built:
                output = r.output or "labels"
                w.writerow(
                    {
                        "group": r.group,
                        "row": r.name,
                        "arch_id": r.arch.id,
                        "status": "built",
                        "latency.segnas": ms[output] / 40.0,
                        "latency.segnas_ms": ms[output],
                        "latency.output": output,
                    }
                )
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(paper_tables.subprocess, "run", run)
    figures = paper_tables.run_table("seed002_table3_smoke")
    assert figures["models"] == 4  # two archs, each timed with two outputs
    rows = {r["row"]: (r["output"], r["ms"]) for r in figures["latency"]["rows"]}
    assert rows == {
        "StrideFormer-Base + VIM": ("labels_vim16", 10.0),
        "StrideFormer-Base + AAM + VIM": ("labels_vim16", 10.0),
        "StrideFormer-Base, no VIM": ("labels", 40.0),
        "StrideFormer-Base + AAM, no VIM": ("labels", 40.0),
    }
    assert figures["latency"]["ratios"] == {
        "strideformer_base_aam_vim_over_strideformer_base_vim": 1.0,
        "strideformer_base_aam_vim_over_strideformer_base_aam_no_vim": 0.25,
    }
