"""Training throughput and time-to-accuracy of a config (default: experiments/toy_train.py).

    python experiments/benchmarks/train_throughput.py          # toy_train, target 0.60
    python experiments/benchmarks/train_throughput.py --target=0.7 \
        --config=experiments/toy_train.py --config.train.eval_every=100 --workdir=/tmp/bench

Trains in a fresh workdir (a temporary one unless --workdir is given; an existing checkpoint
there would resume and distort the figures) and prints:
- steady-state training throughput in images/s (data loading included; the first step, which
  compiles, excluded) and the first step's time;
- the wall time from the start of `train_and_evaluate` (dataset load, compilation and
  evaluations included) until the first evaluation with val/miou >= target, and the
  training-loop time at that point; evaluations happen every `train.eval_every` steps, which
  sets the resolution of this figure;
- the machine's CPU count and 1-minute load average before and after, since on a shared
  machine other processes slow the figures down.

The figures go to experiments/benchmarks/results/train_throughput.json (`--name` for another
name, `--no-save` for none; experiments/benchmarks/results.py describes the file); the README
quotes the default run's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from nas.config import load_config  # noqa: E402
from nas.errors import UserError  # noqa: E402


def _args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--config",
        default=os.path.join(ROOT, "experiments", "toy_train.py"),
        help="experiment config file[:arg]; override fields with --config.a.b=v",
    )
    p.add_argument("--workdir", help="run folder (default: a new temporary folder)")
    p.add_argument("--target", type=float, default=0.60, help="val/miou to reach")
    p.add_argument(
        "--stop_at_target", action="store_true", help="stop training once the target is reached"
    )
    p.add_argument("--name", default="train_throughput", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args, rest = p.parse_known_args(argv)
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        p.error(f"unrecognized arguments: {' '.join(bad)}")
    return args, rest


def main(argv: list[str]) -> int:
    """Train once and print throughput and time to `--target`; exit code 0 if reached, else 1."""
    args, overrides = _args(argv)
    from nas.train.loop import train_and_evaluate

    config = load_config(args.config, overrides)
    workdir = args.workdir or tempfile.mkdtemp(prefix="segnas_bench_")
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        print(f"error: {workdir} already holds a run; use a new --workdir", file=sys.stderr)
        return 2
    evals: list[tuple[int, float, float, float]] = []  # step, wall, loop time, miou
    t0 = time.time()
    load_before = loadavg()
    load0 = os.getloadavg()[0]

    def on_eval(step: int, metrics: dict) -> bool:
        evals.append((step, time.time() - t0, metrics["train/elapsed_s"], metrics["val/miou"]))
        return args.stop_at_target and metrics["val/miou"] >= args.target

    with LoadMonitor() as load:
        result = train_and_evaluate(config, workdir, on_eval=on_eval)
    m = result.metrics
    if not evals or evals[-1][0] != result.step:
        evals.append(
            (
                result.step,
                time.time() - t0,
                m.get("train/elapsed_s", float("nan")),
                m.get("val/miou", float("nan")),
            )
        )
    hit = next((e for e in evals if e[3] >= args.target), None)
    batch = config.train.batch_size
    arch = config.arch.to_dict() if hasattr(config.arch, "to_dict") else config.arch
    print(f"config      {config.data.name}, arch {arch}, {config.train.steps} steps")
    print(
        f"machine     {os.cpu_count()} CPUs, load average {load0:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    print(f"status      {result.status} at step {result.step} {result.message}")
    print(
        f"throughput  {m.get('train/images_per_s', float('nan')):.1f} images/s "
        f"(batch {batch}, steady state)"
    )
    print(
        "evaluations " + ", ".join(f"{s}: {miou:.3f} @ {wall:.0f}s" for s, wall, _, miou in evals)
    )
    if hit:
        print(
            f"target      val/miou {hit[3]:.3f} >= {args.target} at step {hit[0]}: "
            f"{hit[1]:.1f} s wall ({hit[1] / 60:.2f} min), {hit[2]:.1f} s in the training "
            "loop"
        )
    else:
        print(
            f"target      val/miou {args.target} not reached (best {max(e[3] for e in evals):.3f})"
        )
    print(f"total       {result.wall_time_s:.1f} s; workdir {workdir}")
    if not args.no_save:
        figures = {
            "status": result.status,
            "steps": result.step,
            "batch_size": batch,
            "images_per_s": m.get("train/images_per_s"),
            # 0.0 means the trainer did not record it (older TrainResult), not "no compile".
            "compile_s": getattr(result, "compile_s", 0.0) or None,
            "wall_s": result.wall_time_s,
            "wall_min": result.wall_time_s / 60,
            "final_miou": evals[-1][3],
            "target": args.target,
            "target_reached": hit is not None,
            "target_step": hit[0] if hit else None,
            "target_miou": hit[3] if hit else None,
            "target_wall_s": hit[1] if hit else None,
            "target_loop_s": hit[2] if hit else None,
            "evaluations": [
                {"step": s, "wall_s": wall, "loop_s": loop, "miou": miou}
                for s, wall, loop, miou in evals
            ],
        }
        params = {"argv": argv, "config": os.path.relpath(args.config, ROOT), "arch": arch}
        path = write_result(
            args.name, figures, params=params, load_before=load_before, load_during=load.summary()
        )
        print(f"result      {path}")
    return 0 if hit else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:  # a bad config or override: one line, exit code 2
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
