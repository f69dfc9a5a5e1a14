"""The process tests (kills, interrupts, two workers, PostgreSQL) run N times beside a CPU load.

    python experiments/benchmarks/tests_under_load.py [--runs 10] [--cpu 2] [--suite]

A test that kills or interrupts a search must land its signal mid-sweep however slow the
machine is: the fake evaluator waits on a file the test controls (tests/nas/search/fakes.py),
so no test races a clock. This script checks that under load: it starts `stress-ng --cpu N`
(normal priority, N workers busy on the machine's cores) and runs the process tests `--runs`
times in a row with the README's pytest options, then stops the load. `--suite` runs the whole
README test command once under the same load instead. A throw-away PostgreSQL server
(`.ci/postgres`) is started when SEGNAS_TEST_POSTGRES_URL is not set, so the PostgreSQL test
runs rather than skips. Writes experiments/benchmarks/results/tests_under_load.json
(`tests_under_load_suite.json` with --suite; `--no-save`: print only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402

# The tests that start processes and signal them, or run workers side by side.
PROCESS_TESTS = (
    "tests/nas/search/test_workers.py",
    "tests/nas/search/test_postgres.py",
    "tests/nas/cli/test_train.py::test_sigkill_midway_then_rerun_resumes_to_the_same_result",
)


def start_load(cpu: int) -> subprocess.Popen:
    """`stress-ng --cpu cpu` in its own session (stopped with its process group)."""
    if shutil.which("stress-ng") is None:
        raise SystemExit(
            "stress-ng: not found; allowed: install it (Debian: apt-get install stress-ng)"
        )
    return subprocess.Popen(
        ["stress-ng", "--cpu", str(cpu), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def postgres_env() -> tuple[dict[str, str], Path | None]:
    """The environment for pytest: a PostgreSQL URL (a server started here when none is set)
    and SEGNAS_REQUIRE_POSTGRES=1, so the test fails rather than skips."""
    env = {**os.environ, "SEGNAS_REQUIRE_POSTGRES": "1", "WANDB_MODE": "offline"}
    if env.get("SEGNAS_TEST_POSTGRES_URL"):
        return env, None
    pgdir = Path(tempfile.mkdtemp(prefix="segnas-pg."))
    url = subprocess.run(
        [str(ROOT / ".ci" / "postgres"), "start", str(pgdir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env["SEGNAS_TEST_POSTGRES_URL"] = url
    return env, pgdir


def run_pytest(args: list[str], env: dict[str, str]) -> dict:
    """One pytest run: exit code, seconds, its summary line."""
    t0 = time.time()
    p = subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
    return {"returncode": p.returncode, "seconds": round(time.time() - t0, 1), "summary": lines[-1]}


def main(argv: list[str]) -> int:
    """Runs the tests under load; exit 0 when every run passed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--cpu", type=int, default=2, help="stress-ng CPU workers")
    p.add_argument("--suite", action="store_true", help="the whole README test command, once")
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    env, pgdir = postgres_env()
    # The README's test command is `pytest -n 2`; the process tests alone run the same way.
    pytest_args = ["-n", "2"] if args.suite else ["-n", "2", *PROCESS_TESTS]
    runs = 1 if args.suite else args.runs
    load0 = loadavg()
    load = start_load(args.cpu)
    monitor = LoadMonitor()
    results = []
    try:
        with monitor:
            for i in range(runs):
                results.append(run_pytest(pytest_args, env))
                print(f"run {i + 1}/{runs}: {results[-1]['summary']}", flush=True)
    finally:
        os.killpg(load.pid, 15)
        load.wait()
        if pgdir is not None:
            subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", str(pgdir)], check=False)
    figures = {
        "load": f"stress-ng --cpu {args.cpu}",
        "tests": "README test command" if args.suite else list(PROCESS_TESTS),
        "runs": results,
        "passed_runs": sum(r["returncode"] == 0 for r in results),
        "all_passed": all(r["returncode"] == 0 for r in results),
    }
    print(f"{figures['passed_runs']}/{runs} runs passed under {figures['load']}")
    if not args.no_save:
        name = "tests_under_load_suite" if args.suite else "tests_under_load"
        params = {"runs": runs, "cpu": args.cpu, "pytest": pytest_args}
        path = write_result(
            name, figures, params=params, load_before=load0, load_during=monitor.summary()
        )
        print(f"wrote {path}")
    return 0 if figures["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
