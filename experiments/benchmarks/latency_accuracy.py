"""Latency-predictor accuracy on held-out architectures, with the machine's repeatability.

    .venv/bin/python experiments/benchmarks/latency_accuracy.py [--n 100] [--threads 1]
        [--config experiments/latency_cpu.py] [--table latency_tables/litert-cpu_t1.json]
        [--plot latency_accuracy.png] [--json rows.json]

Builds the table for the config's space first when it does not exist (`--resume` also resumes
an existing one, re-tracing every arch to find missing signatures), then samples `n` archs of
that space that were not used for the calibration, predicts each from the table, exports and
times each whole model (LiteRT + XNNPACK, logits, `threads` threads, the table's timing
protocol) and prints `within_10pct`, `median_abs_pct_error` and `max_abs_pct_error`, with the
wall time and the machine's load average (timings on a shared machine are only as good as its
quietness). Target: within_10pct >= 0.95 at 1 thread.
The figures go to experiments/benchmarks/results/latency_accuracy.json (`--name` for another
name, `--no-save` for none); the table's build time is only recorded when this run built it
from scratch (`built_fresh`).

Measured: see results/latency_accuracy.json (the README quotes it): a fresh table of the
default config (270 archs, 1455 signatures, 100 calibration models) and 100 held-out archs,
with the repeatability of 25 of them measured twice beside the prediction errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from nas.config import load_config  # noqa: E402
from nas.latency import build, measure, validate  # noqa: E402
from nas.latency.build import space_of_config  # noqa: E402
from nas.latency.table import default_path, load_table  # noqa: E402


def main(argv: list[str]) -> int:
    """Build or resume the table, validate `--n` held-out archs and print the error figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", default=os.path.join(ROOT, "experiments", "latency_cpu.py"))
    p.add_argument("--table", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=25, help="archs measured twice (repeatability)")
    p.add_argument("--plot", type=Path, default=Path("latency_accuracy.png"))
    p.add_argument("--json", type=Path, help="write every arch's prediction and measurement")
    p.add_argument("--resume", action="store_true", help="complete an existing table first")
    p.add_argument("--name", default="latency_accuracy", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)
    target = "litert-cpu"
    measure.prepare_process(target, args.threads)
    table_path = args.table or default_path(target, args.threads)
    cfg = load_config(args.config)
    space = space_of_config(cfg)
    load_start = loadavg()
    with LoadMonitor() as monitor:  # the whole build and validation sampled
        start = time.time()
        built_fresh = not table_path.exists()
        if args.resume or built_fresh:
            build.build_table(
                list(space.grid()),
                table_path,
                target,
                args.threads,
                space,
                cfg.get("output", "logits"),
                cfg.measure.to_dict(),
                cfg.calibration.to_dict(),
            )
        built_s = time.time() - start
        table = load_table(table_path)
        held = [pt["id"] for pt in table.calibration["points"]]
        archs = validate.sample_archs(space, args.n, args.seed, exclude=held)
        settings = build.settings_of(
            {k: v for k, v in table.settings.items() if k in build.DEFAULT_SETTINGS},
            build.DEFAULT_SETTINGS,
        )
        load_before = os.getloadavg()
        start = time.time()
        # predicted and timed for the output the table was built for (labels_vim16 for seed 002)
        output = table.settings.get("output", "logits")
        result = validate.validate(table, archs, settings, output, repeat=args.repeat)
        validate_s = time.time() - start
    validate.scatter_plot(result, args.plot)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    cal, rep = table.calibration, result["repeatability"]
    print(
        f"table: {table_path} ({len(table.entries)} signatures, {cal['n']} calibration models, "
        f"out of fold {100 * cal['heldout']['within_10pct']:.0f} % within ±10 %; "
        f"build/resume {built_s:.0f} s)"
    )
    print(
        f"validated {result['n']} held-out archs in {validate_s:.0f} s; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"({os.cpu_count()} cores); plot {args.plot}"
    )
    for k in ("within_5pct", "within_10pct", "median_abs_pct_error", "max_abs_pct_error"):
        print(f"{k}: {result[k]}    (repeatability, {rep['n']} archs measured twice: {rep.get(k)})")
    if not args.no_save:
        figures = {
            **{k: result[k] for k in validate.metrics([1.0], [1.0])},
            "repeatability": rep,
            "validate_s": validate_s,
            "loadavg_validate_before": list(load_before),
            "table": {
                "archs": space.size(),
                "signatures": len(table.entries),
                "calibration_n": len(held),
                "calibration_heldout": cal["heldout"],
                "calibration_scale": cal["scale"],
                "calibration_coef": cal["coef"],
                "calibration_offset_ms": cal["offset_ms"],
                "built_fresh": built_fresh,
                # Only a from-scratch build times the whole table; a resume measures less.
                "build_s": built_s if built_fresh else None,
                "build_min": built_s / 60 if built_fresh else None,
            },
        }
        params = {
            "argv": argv,
            "config": os.path.relpath(args.config, ROOT),
            "target": target,
            "threads": args.threads,
            "seed": args.seed,
        }
        path = write_result(
            args.name, figures, params=params, load_before=load_start, load_during=monitor.summary()
        )
        print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
