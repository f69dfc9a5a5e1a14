"""`segnas table`: prints the table, writes table.md / table.csv / a W&B run; bad input is one
line on stderr and exit code 2."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

import nas.cost
from experiments.seed000 import table1
from nas.cli.main import main
from nas.space.resolve import resolve_arch_spec
from tests.nas.test_tables import fake_cost

ROOT = Path(__file__).resolve().parents[3]
T1 = f"{ROOT}/experiments/seed000/table1.py"
T3 = f"{ROOT}/experiments/seed000/table3.py"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["table", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "--workdir" in out and "--out" in out


def test_table3_smoke_measures_side_by_side_and_writes(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys, "--config", f"{T3}:smoke", "--out", str(out_dir), "--quiet",
        "--config.wandb.mode=offline",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("## Seed 000, Table 3: Performance of web video segmentation models")
    assert re.search(
        r"\| #W0 \(Baseline\) \| \w{12} \| 1\.62 \| 7\.18 \| 25\.6 \(1\.00×\) \| 1\.00× ", out
    )
    assert "CPU, EfficientNet-Lite / MobileNetV3 at 64² (#W1 / #W0): paper 0.77, segnas " in out
    assert (out_dir / "table.md").read_text() == out
    rows = list(csv.DictReader((out_dir / "table.csv").open()))
    assert [r["row"] for r in rows] == ["#W0 (Baseline)", "#W1", "#W2", "#W3 (Final)"]
    assert all(float(r["cpu.segnas_ms"]) > 0 for r in rows) and rows[0]["cpu.segnas"] == "1.0"
    assert rows[1]["cpu.paper_ratio"] == "0.7656"
    assert list((out_dir / "wandb").glob("offline-run-*"))  # the W&B table, offline
    assert "W&B run: " in err


def test_table1_reads_the_sweep_in_workdir(capsys, tmp_path, monkeypatch):
    """Accuracy from WORKDIR/trials.jsonl, matched by arch id; --out defaults to the workdir."""
    monkeypatch.setattr(nas.cost, "cost", fake_cost)
    final = resolve_arch_spec(table1.get_config("smoke").table.rows[-2]["arch"])
    record = {"number": 0, "state": "complete", "arch_id": final.id, "metrics": {"val/miou": 0.5}}
    (tmp_path / "trials.jsonl").write_text(json.dumps(record) + "\n")
    code, out, err = run(
        capsys, "--config", f"{T1}:smoke", "--workdir", str(tmp_path),
        "--config.table.latency.mode=skip", "--config.wandb.mode=disabled",
    )  # fmt: skip
    assert code == 0, err
    starred = [line for line in out.splitlines() if "*" in line and line.startswith("|")]
    assert len(starred) == 4 and all("| 50.00 |" in line for line in starred)
    assert f"not run: segnas search --config {T1}:smoke --workdir {tmp_path}" in out
    assert (tmp_path / "table.md").is_file() and (tmp_path / "table.csv").is_file()
    assert not (tmp_path / "wandb").exists()


BAD_KIND = """
from ml_collections import ConfigDict
def get_config(arg=None):
    return ConfigDict({"table": {"rows": ({"name": "a", "arch": %r},),
                                 "columns": ({"key": "x", "kind": %r, "title": "X",
                                              "metric": "params"},)}})
"""


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "--config: missing; allowed: --config experiments/NAME.py[:ARG]"),
        (["--config", "experiments/nope.py"], "--config: file 'experiments/nope.py' not found"),
        (
            ["--config", f"{ROOT}/experiments/toy_train.py:smoke"],
            "--config: the config has no `table` section; allowed: a config with one, e.g. "
            "experiments/seed000/table1.py",
        ),
        (
            ["--config", "BAD:seed000_final:speed"],
            "table.columns[0].kind: got 'speed'; allowed: structural, latency, accuracy, paper",
        ),
        (
            ["--config", "BAD:nope:structural"],
            "table.rows[0].arch: got 'nope'; allowed: a preset name (",
        ),
        (
            ["--config", f"{T3}:smoke", "--config.table.latency.mode=fast"],
            "table.latency.mode: got 'fast'; allowed: measure, predict, skip",
        ),
        (
            ["--config", f"{T1}:bogus"],
            "seed000_table1 config arg: got 'bogus'; allowed: none or 'smoke'",
        ),
        (["--config", f"{T3}:smoke", "--workdir", "/nowhere"], "--workdir: '/nowhere' is not a"),
        (["--config", f"{T3}:smoke", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # table.md would land here, were the input accepted
    bad = tmp_path / "bad.py"
    if "--config" in argv and argv[argv.index("--config") + 1].startswith("BAD:"):
        _, arch, kind = argv[argv.index("--config") + 1].split(":")
        bad.write_text(BAD_KIND % (arch, kind))
        argv = [str(bad) if a.startswith("BAD:") else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("segnas table: error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "table.md").exists()
