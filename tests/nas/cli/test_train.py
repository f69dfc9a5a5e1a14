"""`segnas train`: flags and overrides, bad input (exit 2), and kill -9 / resume parity."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.cli.main import main
from tests.nas.train.helpers import ROOT, subprocess_env

SMOKE = f"{ROOT}/experiments/toy_train.py:smoke"
SEGNAS = str(Path(sys.executable).parent / "segnas")


def test_help(capsys):
    assert main(["train", "--help"]) == 0
    assert "--config FILE[:ARG]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--config", SMOKE], "--workdir: missing"),
        (["--workdir", "w"], "--config: missing"),
        (
            ["--config", f"{ROOT}/experiments/nope.py", "--workdir", "w"],
            r"--config: file '.*experiments/nope.py' not found; allowed: an experiments/\*.py file",
        ),
        (
            ["--config", f"{ROOT}/experiments/toy_train.py:bogus", "--workdir", "w"],
            "ValueError: toy_train config arg: got 'bogus'; allowed: none or 'smoke'",
        ),
        (
            ["--config", SMOKE, "--workdir", "w", "--config.train.nope=1"],
            "--config override: unknown field nope; allowed: a field of the config",
        ),
        (
            ["--config", SMOKE, "--workdir", "w", "--config.train.steps=abc"],
            "flag --config.train.steps=abc: invalid literal for int",
        ),
        (
            ["--config", SMOKE, "--workdir", "w", "extra"],
            "arguments: got 'extra'; allowed: --config",
        ),
        (
            ["--config", SMOKE, "--workdir", "w", "--nope"],
            "arguments: got '--nope'; allowed: --config",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "w" would be created here, were the input accepted
    assert main(["train", *argv]) == 2
    assert not (tmp_path / "w").exists()
    err = capsys.readouterr().err
    assert err.startswith("segnas train: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(match, err), err


def test_overrides_reach_the_trainer(tmp_path, data_dir, jax_cache, capsys):
    code = main(
        [
            "train",
            "--config",
            SMOKE,
            "--workdir",
            str(tmp_path),
            f"--config.data.data_dir={data_dir}",
            "--config.train.steps=3",
            "--config.train.eval_every=0",
            "--config.train.progress=False",
            "--config.arch.decoder.kind=mlp",
            "--config.arch.encoder.depth=0.1",  # 5 blocks of 11: compiling dominates
            "--config.train.max_minutes=5",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("segnas train: complete at step 3, val/miou ")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"]["steps"] == 3 and saved["train"]["max_minutes"] == 5.0
    arch = json.loads((tmp_path / "arch.json").read_text())
    assert arch["decoder"]["kind"] == "mlp" and arch["encoder"]["depth"] == 0.1
    assert [
        json.loads(l)["step"]
        for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if "val/miou" in l
    ] == [3]


def run_cli(workdir: Path, data_dir: str, jax_cache: Path) -> subprocess.Popen:
    # checkpoint every 3 steps; 30 steps leave seconds between the first checkpoint and the end
    cmd = [
        SEGNAS,
        "train",
        "--config",
        SMOKE,
        "--workdir",
        str(workdir),
        f"--config.data.data_dir={data_dir}",
        "--config.train.steps=30",
        "--config.arch.encoder.depth=0.1",  # 5 blocks of 11: compiling dominates this test
        "--config.train.checkpoint_every=3",
        "--config.train.eval_every=15",
        "--config.train.log_every=1",
        "--config.train.progress=False",
    ]
    return subprocess.Popen(
        cmd,
        env=subprocess_env(jax_cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def losses(workdir: Path) -> dict[int, float]:
    rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if "train/loss" in r]
    assert steps == sorted(set(steps)), "a step was logged twice"
    return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


@pytest.mark.slow
def test_sigkill_midway_then_rerun_resumes_to_the_same_result(tmp_path, data_dir, jax_cache):
    ref = run_cli(tmp_path / "ref", data_dir, jax_cache)
    out, _ = ref.communicate(timeout=900)
    assert ref.returncode == 0, out
    reference = json.loads((tmp_path / "ref" / "result.json").read_text())

    run = tmp_path / "run"
    proc = run_cli(run, data_dir, jax_cache)
    deadline = time.time() + 900
    while not any(p.name.isdigit() for p in (run / "checkpoints").glob("*")):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "result.json").exists(), "the run ended before it was killed"
    killed_at = max(int(p.name) for p in (run / "checkpoints").glob("*") if p.name.isdigit())
    assert killed_at < 30

    again = run_cli(run, data_dir, jax_cache)
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "complete" and result["step"] == 30
    for key in ("val/miou", "val/pixel_accuracy", "train/loss", "train/grad_norm"):
        assert result["metrics"][key] == pytest.approx(
            reference["metrics"][key], rel=1e-5, abs=1e-6
        ), key
    # every step's loss, before and after the kill, matches the uninterrupted run
    got, want = losses(run), losses(tmp_path / "ref")
    assert sorted(got) == list(range(1, 31))
    for step in want:
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-6), step
