"""Every experiments/ config, built in its smoke mode and run end to end through the command
that uses it: `segnas train` (a config with `arch` and `train`), `segnas search` with a fake
evaluator (`search`), `segnas latency build` (`space`), `segnas table` (`table`; after its own
search when it has one, so that accuracy cells come from that sweep). A config of a shape
none of these takes fails `test_every_config_is_built`.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from nas.cli.main import main
from nas.config import load_config
from nas.search.spec import spec_from_config
from nas.space.resolve import resolve_arch_spec

ROOT = Path(__file__).resolve().parents[2]
FAKE = "--config.search.evaluator=tests.experiments.fakes:fake_evaluate"


def config_files() -> list[str]:
    """experiments/**/*.py defining a top-level get_config (benchmark scripts excluded)."""
    out = []
    for p in sorted((ROOT / "experiments").rglob("*.py")):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith("experiments/benchmarks/"):
            continue
        tree = ast.parse(p.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "get_config" for n in tree.body):
            out.append(rel)
    return out


CONFIGS = config_files()


def smoke_spec(rel: str) -> str:
    """`FILE:smoke` when the config takes that argument, else `FILE` (its default)."""
    module = importlib.import_module(rel[:-3].replace("/", "."))
    return f"{ROOT / rel}:smoke" if "smoke" in getattr(module, "ARGS", ()) else str(ROOT / rel)


def kinds(config) -> list[str]:
    """The commands a config is for, by its sections. A table config with a search section is
    left out of "search": the table test runs its smoke sweep before printing the table."""
    out = []
    if "arch" in config and "train" in config:
        out.append("train")
    if "search" in config and "table" not in config:
        out.append("search")
    if "space" in config:
        out.append("latency")
    if "table" in config:
        out.append("table")
    return out


# (command, config) runs that take over ~15 s on 2 cores
SLOW = {
    ("train", "experiments/toy_train.py"),
    ("search", "experiments/quickstart.py"),  # builds its latency table first
    ("table", "experiments/seed000/table1.py"),  # its sweep, then 9 models timed
    ("table", "experiments/seed001/table2.py"),  # its sweep, then 4 models counted at 360x640
    ("table", "experiments/seed002/table1.py"),  # a 9-model sweep, then 5 models timed (VIM)
    ("table", "experiments/seed002/table2.py"),  # a 9-model sweep, then 3 models timed
    ("table", "experiments/seed002/table3.py"),  # a 4-model sweep, then 4 models timed (VIM)
}


def with_kind(kind: str) -> list:
    """The configs of `kind` as pytest params (slow ones marked). A config that does not load
    is in every list, so that its runs fail with the loader's error."""
    out = []
    for rel in CONFIGS:
        try:
            ok = kind in kinds(load_config(smoke_spec(rel)))
        except Exception:
            ok = True
        if ok:
            marks = [pytest.mark.slow] if (kind, rel) in SLOW else []
            out.append(pytest.param(rel, marks=marks, id=rel))
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """toy_scenes is generated here on first use (about a second at smoke sizes)."""
    return str(tmp_path_factory.mktemp("tfds"))


def run(capsys, *argv: str) -> str:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return out.out


def test_the_known_configs_are_found():
    assert {
        "experiments/toy_train.py",
        "experiments/quickstart.py",
        "experiments/latency_cpu.py",
        "experiments/seed000/table1.py",
        "experiments/seed000/table3.py",
        "experiments/seed001/table2.py",
        "experiments/seed001/table5.py",
        "experiments/seed001/latency.py",
        "experiments/seed001/joint_search.py",
        "experiments/seed002/table1.py",
        "experiments/seed002/table2.py",
        "experiments/seed002/table3.py",
        "experiments/seed002/table4.py",
    } <= set(CONFIGS)


@pytest.mark.parametrize("rel", CONFIGS, ids=CONFIGS)
def test_every_config_is_built(rel, tmp_path):
    """Its smoke config loads through the one loader, and what it describes is valid."""
    config = load_config(smoke_spec(rel))
    assert kinds(config), f"{rel}: no arch+train, search, space or table section"
    if "arch" in config:
        resolve_arch_spec(config.arch)
    if "search" in config:
        assert spec_from_config(config, tmp_path).space.grid()
    if "table" in config:
        from nas import tables

        assert tables.parse_table(config.table).rows


@pytest.mark.parametrize("rel", with_kind("train"))
def test_train_configs_train(rel, tmp_path, capsys, data_dir):
    out = run(
        capsys,
        "train",
        "--config",
        smoke_spec(rel),
        "--workdir",
        str(tmp_path),
        f"--config.data.data_dir={data_dir}",
        "--config.wandb.mode=disabled",
        "--config.train.progress=False",
    )
    assert "segnas train: complete" in out
    assert (tmp_path / "metrics.jsonl").is_file()


def _search(rel: str, workdir: Path, capsys, data_dir: str) -> None:
    run(
        capsys,
        "search",
        "--config",
        smoke_spec(rel),
        "--workdir",
        str(workdir),
        "--workers",
        "1",
        f"--config.data.data_dir={data_dir}",
        "--config.wandb.mode=disabled",
        FAKE,
    )
    assert (workdir / "trials.jsonl").is_file() and (workdir / "pareto.json").is_file()


@pytest.mark.parametrize("rel", with_kind("search"))
def test_search_configs_search(rel, tmp_path, capsys, data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    _search(rel, tmp_path, capsys, data_dir)


@pytest.mark.parametrize("rel", with_kind("latency"))
def test_latency_configs_build_a_table(rel, tmp_path, capsys):
    out = tmp_path / "table.json"
    run(
        capsys,
        "latency",
        "build",
        "--target",
        "litert-cpu",
        "--config",
        smoke_spec(rel),
        "--out",
        str(out),
    )
    assert out.is_file()


@pytest.mark.parametrize("rel", with_kind("table"))
def test_table_configs_print_their_table(rel, tmp_path, capsys, data_dir, monkeypatch):
    """A table config that is also a search: its smoke sweep first, then the table reads it."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = load_config(smoke_spec(rel))
    workdir = tmp_path / "sweep"
    workdir.mkdir()
    if "search" in config:
        _search(rel, workdir, capsys, data_dir)
    out = run(
        capsys,
        "table",
        "--config",
        smoke_spec(rel),
        "--workdir",
        str(workdir),
        "--quiet",
        "--config.wandb.mode=disabled",
    )
    assert out.startswith("## ") and (workdir / "table.md").read_text() == out
    assert "not measured" not in out
    if "search" in config:  # every accuracy cell filled from the sweep, matched by arch id
        assert "not run:" not in out
