"""The house rules that keep the packages apart: import direction, argv, declared dependencies,
file size.

- `models/` imports nothing from `nas` or `data`;
- `data/` imports from `nas` only the leaf modules `nas.errors` and `nas.io`;
- nothing outside `nas/cli/` imports `nas.cli`, and only `nas/cli/` (plus the standalone
  benchmark scripts) parses argv;
- every third-party package the sources import is declared in pyproject.toml;
- no source file is over 500 lines.
Imports are read from the source (ast), inside functions too, so a lazy import is caught.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nas", "models", "data", "experiments")
DATA_MAY_IMPORT = {"nas.errors", "nas.io"}
ARGV_ALLOWED = ("nas/cli/", "experiments/benchmarks/")


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def imports_of(path: Path) -> list[str]:
    """Absolute module names that `path` imports (`from a import b` gives `a.b` and `a`)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def violations(path: Path) -> list[str]:
    """The import-direction rules `path` breaks, one line each."""
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for name in imports_of(path):
        top = name.split(".")[0]
        if rel.startswith("models/") and top in ("nas", "data"):
            out.append(f"{rel}: models/ imports {name}")
        if rel.startswith("data/") and top == "nas" and name != "nas":
            module = ".".join(name.split(".")[:2])
            if module not in DATA_MAY_IMPORT:
                out.append(f"{rel}: data/ imports {name} (allowed: {sorted(DATA_MAY_IMPORT)})")
        if not rel.startswith("nas/cli/") and (name == "nas.cli" or name.startswith("nas.cli.")):
            out.append(f"{rel}: imports {name} from outside nas/cli/")
    return out


def test_import_direction() -> None:
    bad = [v for p in _sources() for v in violations(p)]
    assert not bad, "\n".join(bad)


def test_the_rule_catches_a_models_file_importing_nas(tmp_path: Path) -> None:
    fake = ROOT / "models" / "_probe_layout_rule.py"
    try:
        fake.write_text("def f():\n    import nas  # lazily\n")
        assert violations(fake) == ["models/_probe_layout_rule.py: models/ imports nas"]
    finally:
        fake.unlink()


def test_only_the_cli_parses_argv() -> None:
    bad = []
    for p in _sources():
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith(ARGV_ALLOWED):
            continue
        text = p.read_text()
        names = imports_of(p)
        if (
            "argparse" in names
            or "sys.argv" in text
            or "absl.flags" in names
            and rel != "nas/config.py"
        ):
            bad.append(rel)
    assert not bad, f"argv parsed outside nas/cli/: {bad}"


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {
        r.split("==")[0].split(">")[0].split("[")[0].strip().lower().replace("_", "-") for r in reqs
    }


def test_every_imported_package_is_declared() -> None:
    dists = metadata.packages_distributions()
    declared = _declared()
    missing = set()
    for p in _sources():
        for name in imports_of(p):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__":
                continue
            owners = {d.lower().replace("_", "-") for d in dists.get(top, [])}
            if top == "tensorflow":
                owners.add("tensorflow-cpu")
            if not owners & declared:
                missing.add(f"{top} ({sorted(owners) or 'not installed'}) in {p.relative_to(ROOT)}")
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(
        sorted(missing)
    )


@pytest.mark.parametrize("limit", [500])
def test_no_source_file_over_the_limit(limit: int) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > limit
    }
    assert not long, long
