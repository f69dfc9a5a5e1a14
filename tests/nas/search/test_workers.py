"""Several worker processes on one storage, and a search killed (SIGKILL) and resumed.

The commands run in subprocesses as `python -m tests.nas.search.run_fake_search` from the repo
root: `segnas search` with the fake evaluator and cost, so each candidate takes a fraction of a
second.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[2]
RUNNER = [
    sys.executable,
    "-m",
    "tests.nas.search.run_fake_search",
    "--config",
    str(HERE / "fake_search_config.py"),
]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def counted(workdir):
    recs = [json.loads(x) for x in (workdir / "trials.jsonl").read_text().splitlines()]
    return [r for r in recs if r["outcome"] not in ("killed", "duplicate")]


def assert_each_arch_trained_once(workdir, recs, steps=6):
    for r in recs:
        logged = (workdir / "trials" / r["arch_id"] / "steps.log").read_text().split()
        # Steps are checkpointed before they are logged: a kill can drop a line, never repeat one.
        assert len(logged) == len(set(logged)), f"{r['arch_id']} trained a step twice"
        assert json.loads((workdir / "trials" / r["arch_id"] / "ckpt.json").read_text()) == {
            "step": steps
        }


def test_two_workers_on_one_storage_finish_an_8_trial_study(tmp_path):
    cmd = [*RUNNER, "--workdir", str(tmp_path), "--config.fake.step_time=0.1"]
    procs = [
        subprocess.Popen(
            [*cmd, "--worker-index", str(k)],
            env=ENV,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for k in (1, 2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    recs = counted(tmp_path)
    assert len(recs) == 8 and {r["state"] for r in recs} == {"complete"}
    assert len({r["arch_id"] for r in recs}) == 8  # no architecture twice
    assert len({r["worker"]["pid"] for r in recs}) == 2  # both workers took trials
    assert_each_arch_trained_once(tmp_path, recs)
    with sqlite3.connect(tmp_path / "study.db") as db:  # nor any extra trial in the study
        assert db.execute("select count(*) from trials").fetchone()[0] == 8


@pytest.mark.slow
def test_workers_flag_runs_child_processes(tmp_path):
    # The children are `python -m nas.cli search`: real nas.cost (seconds per candidate).
    r = subprocess.run(
        [*RUNNER, "--workdir", str(tmp_path), "--workers", "2", "--config.search.num_trials=4"],
        env=ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "started 2 workers" in r.stdout and "Pareto front" in r.stdout
    recs = counted(tmp_path)
    assert len(recs) == 4 and len({r["arch_id"] for r in recs}) == 4
    assert {r["state"] for r in recs} == {"complete"}
    assert sorted((tmp_path / "logs").iterdir()) == [
        tmp_path / "logs" / "worker-1.log",
        tmp_path / "logs" / "worker-2.log",
    ]


def _complete(workdir):
    if not (workdir / "study.db").exists():
        return 0
    with sqlite3.connect(workdir / "study.db", timeout=30) as db:
        try:
            return db.execute("select count(*) from trials where state='COMPLETE'").fetchone()[0]
        except sqlite3.OperationalError:  # the tables are not created yet
            return 0


def _steps_logged(workdir):
    return sum(len(f.read_text().split()) for f in workdir.glob("trials/*/steps.log"))


@pytest.mark.slow
def test_sigkill_at_five_random_moments_then_resume(tmp_path):
    # 8 candidates x 6 steps. The test hands out steps through the gate file: before each kill
    # it releases 1-6 more steps and waits until they are logged, so every kill lands
    # mid-sweep (a candidate blocked between two steps) however slow the machine is.
    gate = tmp_path / "gate"
    gate.write_text("0")
    cmd = [
        *RUNNER,
        "--workdir",
        str(tmp_path),
        "--config.fake.step_time=0",
        f"--config.fake.gate={gate}",
    ]
    rng = random.Random(5)
    before = 0
    for _ in range(5):
        allowed = _steps_logged(tmp_path) + rng.randint(1, 6)
        gate.write_text(str(allowed))
        p = subprocess.Popen(
            cmd,
            env=ENV,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 300
        while _steps_logged(tmp_path) < allowed:
            assert p.poll() is None and time.time() < deadline, "the sweep stopped early"
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGKILL)  # our own process group only
        p.wait()
        now = _complete(tmp_path)
        assert now >= before, "a complete trial was lost"
        before = now
    assert before < 8 and _steps_logged(tmp_path) < 48, "the kills should interrupt the sweep"
    gate.write_text("1000000")
    r = subprocess.run(cmd, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = counted(tmp_path)
    assert len(recs) == 8 and {r["state"] for r in recs} == {"complete"}
    assert len({r["arch_id"] for r in recs}) == 8
    assert_each_arch_trained_once(tmp_path, recs)


@pytest.mark.slow
def test_ctrl_c_hands_the_trial_back_and_the_rerun_finishes(tmp_path):
    gate = tmp_path / "gate"
    gate.write_text("7")  # the first candidate (6 steps) and one step of the second
    cmd = [
        *RUNNER,
        "--workdir",
        str(tmp_path),
        "--config.fake.step_time=0",
        f"--config.fake.gate={gate}",
    ]
    p = subprocess.Popen(
        cmd,
        env=ENV,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A pytest-xdist worker may ignore SIGINT, and a child inherits that (Python then never
        # raises KeyboardInterrupt): give the command the default disposition a terminal gives.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    # Mid-sweep, by construction: the second candidate is blocked on the gate after its first
    # step, so the first is complete and the sweep cannot end before the interrupt.
    while _steps_logged(tmp_path) < 7:
        assert p.poll() is None and time.time() < deadline, "the sweep stopped early"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err[-2000:]
    assert err.strip().endswith(
        "interrupted: the running trial was handed back (its checkpoint "
        "is kept); run the same command again to continue"
    )
    assert "Traceback" not in err
    before = _complete(tmp_path)
    assert 0 < before < 8
    gate.write_text("1000000")
    r = subprocess.run(cmd, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = counted(tmp_path)
    assert len(recs) == 8 and len({r["arch_id"] for r in recs}) == 8
    assert_each_arch_trained_once(tmp_path, recs)
