"""The README's main command, measured: toy_train's throughput, then the quickstart search, side
by side on one machine, with an empty compilation cache.

    python experiments/benchmarks/quickstart_run.py            # ~15 min on 2 cores
    python experiments/benchmarks/quickstart_run.py --seed=1 --table=runs/q0/latency-litert-cpu.json

Steps:
1. toy_train (experiments/toy_train.py) for `--throughput_steps` steps in a fresh workdir: its
   steady-state training images/s, the machine's speed on the project's reference run.
2. `segnas search --config experiments/quickstart.py --workdir W` as a child process, with
   JAX_COMPILATION_CACHE_DIR pointing at a new empty folder (a fresh machine): wall seconds,
   the user and system CPU seconds of the whole process tree (system share = sys / (user +
   sys)), the trials' outcomes, whether every complete candidate reached its full step budget,
   the hypervolume and its reference point, and the winners' parity and latency (predicted by
   the search's table vs measured on the exported file).
3. The acceptance bar of the main command: wall <= 15 min x 20 / (toy_train images/s), so a
   machine twice as fast must finish in half the time.

Writes `experiments/benchmarks/results/quickstart[_seedN].json` (`--no_save`: print only).
`--seed` sets search.seed; `--table` reuses a latency table (two runs that share a table
report hypervolumes against the same reference point).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import loadavg, write_result  # noqa: E402

BAR_MINUTES, BAR_IMAGES_PER_S = 15.0, 20.0  # the bar: 15 min on a 20 images/s machine


def toy_train_throughput(steps: int, workdir: Path) -> float:
    """Steady-state images/s of experiments/toy_train.py over `steps` steps (no evaluation)."""
    from experiments.toy_train import get_config
    from nas.train.loop import train_and_evaluate

    c = get_config()
    c.train.steps, c.train.eval_every, c.train.progress = steps, 0, False
    c.wandb.mode = "disabled"
    result = train_and_evaluate(c, workdir)
    return float(result.metrics["train/images_per_s"])


def run_quickstart(workdir: Path, cache: Path, overrides: list[str]) -> dict:
    """The search command in a child process; wall and CPU seconds of its whole tree."""
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache), "WANDB_SILENT": "true"}
    cmd = [sys.executable, "-m", "nas.cli.main", "search", "--config"]
    cmd += [str(ROOT / "experiments" / "quickstart.py"), "--workdir", str(workdir), *overrides]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (workdir / "quickstart.log").write_text(proc.stdout + proc.stderr)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "returncode": proc.returncode,
        "wall_s": round(wall, 1),
        "user_cpu_s": round(user, 1),
        "system_cpu_s": round(system, 1),
        "system_share": round(system / max(user + system, 1e-9), 4),
        "tail": (proc.stdout + proc.stderr).strip().splitlines()[-8:],
    }


def summarize(workdir: Path) -> dict:
    """Outcomes, budgets, front and winners from the search's workdir."""
    recs = [json.loads(line) for line in (workdir / "trials.jsonl").read_text().splitlines()]
    complete = [r for r in recs if r["outcome"] == "complete"]
    outcomes: dict[str, int] = {}
    for r in recs:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    front = json.loads((workdir / "pareto.json").read_text())
    winners = []
    for path in sorted((workdir / "winners").glob("*.json")):
        if path.name == "winners.json":  # the list of all winners; one report per winner
            continue
        w = json.loads(path.read_text())
        p = w.get("parity") or {}
        winners.append(
            {
                "arch_id": path.stem,
                "parity_passed": p.get("passed"),
                "max_abs_diff": p.get("max_abs_diff"),
                "argmax_agreement": p.get("argmax_agreement"),
                # the search's predicted latency against the exported file's, one protocol
                "predicted_ms": (w.get("latency") or {}).get("predicted_ms"),
                "measured_ms": (w.get("latency") or {}).get("measured_ms"),
                "latency_error_pct": (w.get("latency") or {}).get("error_pct"),
            }
        )
    mious = [r["metrics"]["val/miou"] for r in complete]
    # the latency table the search built: its predictor's out-of-fold error on its own points
    table = workdir / "latency-litert-cpu.json"
    cal = json.loads(table.read_text()).get("calibration") or {} if table.exists() else {}
    return {
        "table_heldout": cal.get("heldout"),
        "outcomes": outcomes,
        "distinct_complete": len({r["arch_id"] for r in complete}),
        "all_full_budget": all(
            r["train"]["step"] == r["train"]["step_budget"] > 0 for r in complete
        ),
        "step_budget": sorted({r["train"]["step_budget"] for r in complete}),
        "compile_s_total": round(sum(r["train"]["compile_s"] for r in complete), 1),
        "train_s_total": round(sum(r["train"]["train_s"] for r in complete), 1),
        "val_miou_min": round(min(mious), 4) if mious else None,
        "val_miou_max": round(max(mious), 4) if mious else None,
        "front_size": len(front["pareto"]),
        "hypervolume": front["hypervolume"],
        "reference_point": front["reference_point"],
        "winners": winners,
        "winners_parity_passed": bool(winners) and all(w["parity_passed"] for w in winners),
        "winners_latency_within_10pct": bool(winners)
        and all(
            w["latency_error_pct"] is not None and abs(w["latency_error_pct"]) <= 10.0
            for w in winners
        ),
    }


def main(argv: list[str]) -> int:
    """Measure and print; exit 0 when the run meets the bar, else 1."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--throughput_steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0, help="search.seed")
    p.add_argument("--table", default="", help="an existing litert-cpu latency table")
    p.add_argument("--workdir", default="", help="default: a new temporary folder")
    p.add_argument("--no_save", action="store_true", help="print only, write no result")
    args = p.parse_args(argv)
    if args.throughput_steps <= 50:  # toy_train warms its learning rate up for 50 steps
        p.error(f"--throughput_steps: got {args.throughput_steps}; allowed: an integer > 50")
    load0 = loadavg()
    base = Path(args.workdir or tempfile.mkdtemp(prefix="segnas_quickstart_"))
    base.mkdir(parents=True, exist_ok=True)
    ips = toy_train_throughput(args.throughput_steps, base / "toy_train")
    print(f"toy_train: {ips:.1f} images/s", flush=True)
    overrides = [f"--config.search.seed={args.seed}"]
    if args.table:  # where the quickstart looks for its table (search.latency_tables '')
        (base / "search").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.table, base / "search" / "latency-litert-cpu.json")
    run = run_quickstart(base / "search", base / "empty_cache", overrides)
    print(f"quickstart: rc {run['returncode']}, {run['wall_s']:.0f} s", flush=True)
    figures = {"toy_train_images_per_s": round(ips, 2), **run}
    if run["returncode"] == 0:
        figures.update(summarize(base / "search"))
    bar = BAR_MINUTES * 60 * BAR_IMAGES_PER_S / ips
    figures["bar_s"] = round(bar, 1)
    figures["wall_min"] = round(run["wall_s"] / 60, 2)
    figures["meets_bar"] = bool(
        run["returncode"] == 0
        and run["wall_s"] <= bar
        and run["system_share"] < 0.10
        and figures.get("distinct_complete", 0) >= 12
        and figures.get("all_full_budget")
        and "timeout" not in figures.get("outcomes", {})
        and figures.get("winners_parity_passed")
    )
    print(json.dumps(figures, indent=2))
    if not args.no_save:
        name = "quickstart" if args.seed == 0 else f"quickstart_seed{args.seed}"
        params = {"seed": args.seed, "table": args.table, "throughput_steps": args.throughput_steps}
        path = write_result(name, figures, params=params, load_before=load0)
        print(f"wrote {path}")
    return 0 if figures["meets_bar"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
