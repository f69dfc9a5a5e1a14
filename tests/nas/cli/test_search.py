"""`segnas search` / `segnas pareto`: bad input is one line on stderr and exit code 2."""

import json
import os
from pathlib import Path

import pytest

import nas.cost
from nas.cli import main as cli
from tests.nas.search import fakes

CONFIG = str(Path(__file__).parents[1] / "search" / "fake_search_config.py")


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def fake_cost(monkeypatch):
    monkeypatch.setattr(nas.cost, "cost", fakes.fake_cost)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "--config.search.strategy=bayes",
            "search.strategy: got 'bayes'; allowed: random, grid, ablation, nsga2, tpe",
        ),
        (
            "--config.search.objectives=('val/miou','speed')",
            "search.objectives: got 'speed'; allowed: val/miou, latency/<target>",
        ),
        (
            "--config.search.objectives=('val/miou','latency/phone')",
            "search.objectives: unknown latency target 'phone'",
        ),
        (
            "--config.search.max_latency_ms={'litert-cpu':5.0}",
            "search.max_latency_ms: latency/litert-cpu needs a latency table",
        ),
        (
            "--config.search.evaluator=nowhere:train",
            "search.evaluator: cannot import 'nowhere:train'",
        ),
        (
            "--config.search.nope=1",
            "--config override: unknown field nope; allowed: a field of the config",
        ),
        (
            "--config.search.num_trials=abc",
            "config: flag --config.search.num_trials=abc: invalid literal for int()",
        ),
    ],
)
def test_bad_config_values(capsys, tmp_path, override, message):
    code, out, err = run(capsys, "search", "--config", CONFIG, "--workdir", str(tmp_path), override)
    assert code == 2 and out == ""
    assert err.startswith("segnas search: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_latency_table_names_the_build_command(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "search",
        "--config",
        CONFIG,
        "--workdir",
        str(tmp_path),
        "--config.search.latency_tables={'litert-cpu':'/nowhere/t.json'}",
        "--config.search.objectives=('val/miou','latency/litert-cpu')",
    )
    assert code == 2
    assert (
        "search.latency_tables.litert-cpu: '/nowhere/t.json' not found; allowed: an "
        "existing table (build one with `segnas latency build --target litert-cpu"
    ) in err


def _incomplete_table(path: Path) -> None:
    from tests.nas.latency.helpers import synthetic_table

    table = synthetic_table()
    table.complete = False  # what a build killed part-way leaves
    table.save(path)


def test_incomplete_latency_table_is_refused_when_building_is_off(capsys, tmp_path):
    _incomplete_table(tmp_path / "t.json")
    code, _, err = run(
        capsys,
        "search",
        "--config",
        CONFIG,
        "--workdir",
        str(tmp_path / "w"),
        f"--config.search.latency_tables={{'litert-cpu':'{tmp_path / 't.json'}'}}",
        "--config.search.objectives=('val/miou','latency/litert-cpu')",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        f"search.latency_tables.litert-cpu: '{tmp_path / 't.json'}' is incomplete (its build "
        "was interrupted); allowed: a complete table (finish it with `segnas latency build "
        "--target litert-cpu"
    ) in err


def test_incomplete_latency_table_is_resumed_before_the_first_trial(tmp_path, monkeypatch):
    from ml_collections import ConfigDict

    from nas import latency
    from nas.search import prepare
    from nas.search.spec import spec_from_config

    path = tmp_path / "t.json"
    _incomplete_table(path)
    resumed = []

    def finish(space, target, out):
        resumed.append((target, Path(out)))
        table = latency.load_table(out)
        table.complete = True
        table.save(out)
        return table

    monkeypatch.setattr(latency, "build_table_for_space", finish)
    search = {
        "space": "seed000",
        "objectives": ("val/miou", "latency/litert-cpu"),
        "latency_tables": {"litert-cpu": str(path)},
        "build_missing_tables": True,
    }
    spec = spec_from_config(ConfigDict({"search": search}), tmp_path)
    tables = prepare.load_tables(spec, build=True)
    assert resumed == [("litert-cpu", path)] and tables["litert-cpu"].complete
    assert prepare.load_tables(spec, build=True)["litert-cpu"].complete
    assert resumed == [("litert-cpu", path)]  # complete now: not built again


def test_unwritable_workdir(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run(capsys, "search", "--config", CONFIG, "--workdir", str(blocker / "w"))
    assert code == 2
    assert err.strip() == (
        f"segnas search: error: workdir: cannot write '{blocker / 'w'}' "
        "(Not a directory); allowed: a writable directory"
    )


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "sqlite:////nonexistent-dir/study.db",
            "storage: cannot open 'sqlite:////nonexistent-dir/study.db' (",
        ),
        (
            "postgresql://nobody@127.0.0.1:1/segnas",
            "storage: cannot open 'postgresql://nobody@127.0.0.1:1/segnas'",
        ),
        ("just-a-name", "storage: got 'just-a-name'; allowed: a database URL"),
    ],
)
def test_unreachable_storage(capsys, tmp_path, url, message):
    code, _, err = run(
        capsys, "search", "--config", CONFIG, "--workdir", str(tmp_path), "--storage", url
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_bad_arguments(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--workdir", str(tmp_path))
    assert code == 2 and "--config: missing" in err
    code, _, err = run(
        capsys, "search", "--config", CONFIG, "--workdir", str(tmp_path), "--workers", "0"
    )
    assert code == 2 and "--workers / search.workers: got 0; allowed: an integer >= 1" in err
    code, _, err = run(capsys, "search", "--config", "/nowhere/cfg.py", "--workdir", str(tmp_path))
    assert code == 2
    assert err.startswith("segnas search: error: --config: file '/nowhere/cfg.py' not found")
    code, _, err = run(capsys, "pareto", "--workdir", str(tmp_path / "empty"))
    assert code == 2 and "search.json' not found" in err


def test_search_then_pareto_rerenders(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "search",
        "--config",
        CONFIG,
        "--workdir",
        str(tmp_path),
        "--config.search.num_trials=3",
    )
    assert code == 0, err
    assert "study 'fake': strategy random" in out and "Pareto front: " in out
    assert out.count("complete ") >= 3  # the per-trial lines (and the table)
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["storage"] == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    assert saved["config"]["search"]["num_trials"] == 3
    for name in ("pareto.json", "pareto.png", "pareto.html"):
        os.remove(tmp_path / name)
    code, out, _ = run(capsys, "pareto", "--workdir", str(tmp_path))
    assert code == 0 and "Pareto front: " in out
    assert all((tmp_path / n).exists() for n in ("pareto.json", "pareto.png", "pareto.html"))
    assert len((tmp_path / "trials.jsonl").read_text().splitlines()) == 3
