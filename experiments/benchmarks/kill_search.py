"""A real search killed with SIGKILL at random moments and resumed each time: nothing is lost.

    python experiments/benchmarks/kill_search.py [--kills 10] [--seed 0] [--workdir DIR]

The search is the quickstart's (real trainer, real latency table built in the workdir, the
latency objective), cut to 5 candidates of 40 steps on one worker. It is started, killed with
SIGKILL (its whole process group) and started again, `--kills` times. The first
`--table-kills` kills come a random 15-45 s after the start, while the latency table is being
measured; each later one waits until the table is complete (the candidates are being
compiled or trained) and then a random 10-60 s more. After each kill the script reads the
study and prints the complete trials; then it runs the command to its end and checks:
- complete trials never decrease from one kill to the next;
- no architecture is complete twice (and every counted trial is a distinct architecture);
- the study ends with all 5 candidates complete;
- steps trained twice: after each kill, the steps candidates had logged beyond their newest
  checkpoint (the work the kill cost: at most `train.checkpoint_minutes` of training each).
Writes experiments/benchmarks/results/kill_search.json (`--no-save`: print only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import loadavg, write_result  # noqa: E402

OVERRIDES = [
    "--config.search.num_trials=5",
    "--config.search.workers=1",
    "--config.train.steps=40",
    "--config.search.winners.max_count=0",
    "--config.wandb.mode=disabled",
]


def complete_trials(workdir: Path) -> list[str]:
    """Arch ids of the study's complete, non-duplicate trials (read-only)."""
    db = workdir / "study.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as c:
            rows = c.execute(
                "select t.trial_id, a.value_json from trials t join trial_user_attributes a "
                "on a.trial_id = t.trial_id where t.state = 'COMPLETE' and a.key = 'arch_id'"
            ).fetchall()
            dup = {
                r[0]
                for r in c.execute(
                    "select trial_id from trial_user_attributes where key = 'outcome' "
                    "and value_json != '\"complete\"'"
                )
            }
    except sqlite3.OperationalError:  # tables not created yet
        return []
    return [json.loads(v) for tid, v in rows if tid not in dup]


def table_complete(workdir: Path) -> bool:
    """Whether the workdir's latency table is built (a killed build leaves complete false)."""
    path = workdir / "latency-litert-cpu.json"
    try:
        return json.loads(path.read_text()).get("complete", True) is not False
    except (OSError, ValueError):
        return False


def phase(workdir: Path) -> str:
    """What the search was doing: building its latency table, or training."""
    return "training" if table_complete(workdir) else "table build"


def wait_for(proc: subprocess.Popen, ready, timeout: float = 1800.0) -> bool:
    """Polls until `ready()` or the process ends; False when it ended first."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.5)
    return True


def steps_to_retrain(workdir: Path) -> dict[str, int]:
    """Per candidate, steps logged beyond its newest checkpoint: what a kill now makes it train
    again (a lower bound: steps are logged every `train.log_every`). Read right after a kill:
    a resumed run rewrites its metrics log from the checkpoint on."""
    out = {}
    for trial in workdir.glob("trials/*"):
        metrics = trial / "metrics.jsonl"
        if not metrics.exists():
            continue
        rows = map(json.loads, metrics.read_text().splitlines())
        logged = [r["step"] for r in rows if "train/loss" in r]
        saved = max(
            (int(p.name) for p in (trial / "checkpoints").glob("*") if p.name.isdigit()), default=0
        )
        if logged and max(logged) > saved:
            out[trial.name] = max(logged) - saved
    return out


def main(argv: list[str]) -> int:
    """Kill, resume, check; exit 0 when every check holds."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--table-kills", type=int, default=3, help="kills during the table build")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill_search_")) / "search"
    cmd = [
        sys.executable,
        "-m",
        "nas.cli.main",
        "search",
        "--config",
        str(ROOT / "experiments" / "quickstart.py"),
        "--workdir",
        str(workdir),
        *OVERRIDES,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_SILENT": "true"}
    rng = random.Random(args.seed)
    load0, t0 = loadavg(), time.time()
    kills, before, monotone = [], 0, True
    for k in range(args.kills):
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if k < args.table_kills:
            wait = rng.uniform(15.0, 45.0)
        else:  # once the table is built: while candidates compile or train
            started = wait_for(proc, lambda: table_complete(workdir))
            wait = rng.uniform(10.0, 60.0) if started else 0.0
        try:
            proc.wait(timeout=wait)
            ended = True  # it finished before the kill: fewer kills than asked
        except subprocess.TimeoutExpired:
            ended = False
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        done = complete_trials(workdir)
        monotone &= len(done) >= before
        before = len(done)
        kills.append(
            {
                "after_s": round(wait, 1),
                "phase": phase(workdir),
                "complete": len(done),
                "ended": ended,
                "steps_to_retrain": sum(steps_to_retrain(workdir).values()),
            }
        )
        print(
            f"kill {k + 1}: {wait:.0f} s after the start or the table ({kills[-1]['phase']}): "
            f"{len(done)} complete, "
            f"{kills[-1]['steps_to_retrain']} steps to train again"
        )
        if ended:
            break
    final = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    done = complete_trials(workdir)
    figures = {
        "kills": kills,
        "kills_landed": sum(not k["ended"] for k in kills),
        "kills_in_table_build": sum(k["phase"] == "table build" and not k["ended"] for k in kills),
        "kills_in_training": sum(k["phase"] == "training" and not k["ended"] for k in kills),
        "final_returncode": final.returncode,
        "complete_never_decreased": monotone and len(done) >= before,
        "complete": len(done),
        "distinct_complete": len(set(done)),
        "requested": 5,
        # steps trained twice: logged beyond the newest checkpoint when a kill came
        "steps_trained_twice": sum(k["steps_to_retrain"] for k in kills),
        "wall_s": round(time.time() - t0, 1),
    }
    figures["passed"] = bool(
        final.returncode == 0
        and figures["complete_never_decreased"]
        and figures["complete"] == figures["distinct_complete"] == 5
    )
    print(json.dumps(figures, indent=2))
    if final.returncode:
        print(final.stderr[-3000:], file=sys.stderr)
    if not args.no_save:
        params = {
            "kills": args.kills,
            "table_kills": args.table_kills,
            "seed": args.seed,
            "overrides": OVERRIDES,
        }
        print(f"wrote {write_result('kill_search', figures, params=params, load_before=load0)}")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
