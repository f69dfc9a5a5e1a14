"""Wall time and latency figures of `segnas table` for the paper tables that time models.

    .venv/bin/python experiments/benchmarks/paper_tables.py            # seed 000's table1, table3
    .venv/bin/python experiments/benchmarks/paper_tables.py --tables table3 --no-save
    .venv/bin/python experiments/benchmarks/paper_tables.py --tables seed001_table5 \
        --name paper_tables_seed001
    .venv/bin/python experiments/benchmarks/paper_tables.py --tables seed002_table1 \
        seed002_table2 seed002_table3 --name paper_tables_seed002
    .venv/bin/python experiments/benchmarks/paper_tables.py --tables seed002_table1_smoke \
        --no-save                                   # the quick form: 64 px, 3 rounds

Runs `segnas table --config <its config> --quiet` as its own process (so the
time includes start-up, as a user sees it) in a temporary --out folder, one table after the
other, and reads the table.csv it wrote. Per table it records the wall time, the number of
distinct models timed, each row's latency (ms, LiteRT XNNPACK 1 thread) and ratio to the
reference row (`<column>.rows`; with the row's own output, e.g. `labels_vim16`, when the table
gives rows one: seed 002's VIM rows), and the ratios the config names (`table.ratios`, e.g.
Table 3's EfficientNet-Lite / MobileNetV3 at each size). The figures go to
experiments/benchmarks/results/paper_tables.json (`--name` for another name, `--no-save` for
none); on a shared machine the load average in that file says how quiet it was.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from nas import tables  # noqa: E402
from nas.config import load_config  # noqa: E402

# name -> config: seed 000's Tables 1 and 3 (the default run), seed 001's Table 5, seed 002's
# Tables 1-3 (latency as ratios to LR-ASPP / to PP-MobileSeg-Base without VIM; `_smoke`: the
# same rows at 64 px with 3 rounds, a quick check that the entries run)
TABLES = {
    "table1": "experiments/seed000/table1.py",
    "table3": "experiments/seed000/table3.py",
    "seed001_table5": "experiments/seed001/table5.py",
    "seed002_table1": "experiments/seed002/table1.py",
    "seed002_table2": "experiments/seed002/table2.py",
    "seed002_table3": "experiments/seed002/table3.py",
    "seed002_table1_smoke": "experiments/seed002/table1.py:smoke",
    "seed002_table2_smoke": "experiments/seed002/table2.py:smoke",
    "seed002_table3_smoke": "experiments/seed002/table3.py:smoke",
}
DEFAULT_TABLES = ("table1", "table3")


def slug(text: str) -> str:
    """`text` as a key usable in a dotted result path: lower case, [a-z0-9_] only."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _number(text: str) -> float | None:
    """A CSV cell as a float, None when empty."""
    return float(text) if text not in ("", "None") else None


def run_table(name: str) -> dict[str, Any]:
    """Runs `segnas table` for the config `TABLES[name]` and returns its figures."""
    config_path = TABLES[name]
    # Parsed first, so that a bad config fails before minutes of timing.
    spec = tables.parse_table(load_config(os.path.join(ROOT, config_path)).get("table"))
    with tempfile.TemporaryDirectory(prefix=f"segnas_{name}_") as out:
        cmd = [sys.executable, "-m", "nas.cli.main", "table", "--config", config_path]
        cmd += ["--out", out, "--quiet"]
        env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
        start = time.time()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.time() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
        rows = list(csv.DictReader((Path(out) / "table.csv").open()))
    latency_keys = [c.key for c in spec.columns if c.kind == "latency"]
    figures: dict[str, Any] = {
        "wall_s": wall,
        "rows": len(rows),
        # distinct models timed: an arch timed with two outputs (seed 002's VIM rows) is two
        "models": len(
            {
                (r["arch_id"], *(r.get(f"{k}.output", "") for k in latency_keys))
                for r in rows
                if r["status"] == "built"
            }
        ),
    }
    for key in latency_keys:
        # A list, not a dict by row name: Table 1 repeats its baseline row in every group.
        figures[key] = {
            "rows": [
                {
                    "group": r["group"],
                    "row": r["row"],
                    "ms": _number(r.get(f"{key}.segnas_ms", "")),
                    "ratio_to_reference": _number(r.get(f"{key}.segnas", "")),
                    # only tables with rows of their own output have the column
                    **({"output": r[f"{key}.output"]} if f"{key}.output" in r else {}),
                }
                for r in rows
            ]
        }
        ms = {r["row"]: _number(r.get(f"{key}.segnas_ms", "")) for r in rows}
        for ratio in spec.ratios:
            if ratio["column"] != key:
                continue
            num, den = ms.get(ratio["numerator"]), ms.get(ratio["denominator"])
            label = f"{slug(ratio['numerator'])}_over_{slug(ratio['denominator'])}"
            figures[key].setdefault("ratios", {})[label] = num / den if num and den else None
    return figures


def main(argv: list[str]) -> int:
    """Times each table, prints its figures and saves them all in one result file."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", choices=list(TABLES), default=list(DEFAULT_TABLES))
    p.add_argument("--name", default="paper_tables", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)
    load_before = loadavg()
    figures = {}
    with LoadMonitor(interval_s=5.0) as load:
        for name in args.tables:
            figures[name] = f = run_table(name)
            print(f"{name}: {f['wall_s']:.1f} s, {f['models']} models")
            for key, value in f.items():
                if isinstance(value, dict):
                    print(f"  {key}: {value}")
    if not args.no_save:
        path = write_result(
            args.name,
            figures,
            params={"argv": argv},
            load_before=load_before,
            load_during=load.summary(),
        )
        print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
