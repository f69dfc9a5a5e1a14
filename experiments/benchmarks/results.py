"""Benchmark results as committed JSON artefacts, and the README markers that point at them.

Every benchmark calls `write_result(name, figures, params=...)`, which writes
`experiments/benchmarks/results/<name>.json` with the figures plus what is needed to judge them:
how the benchmark was run (`params`), the machine (CPU model and count, memory, load average
before and after, since this often runs on a shared machine), the package versions, the segnas
commit and the UTC date.

A measured figure in README.md carries a marker right after it, an HTML comment GitHub does not
render, naming the file (under results/) and the dotted key path of the value:

    ... 51.3 images/s<!-- result: train_throughput.json figures.images_per_s fmt=.1f -->

Optional `fmt=SPEC` (a Python format spec) and `scale=K` (value multiplied by K before
formatting, e.g. 100 for a percentage, 1e-3 for ms -> s) say how the figure is printed; with
`fmt` the text just before the marker must end with the formatted value, so a README figure that
drifts from its artefact is caught by `marker_errors` (tests/experiments/test_results.py).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts run from a checkout without installing segnas

from nas.io import write_json  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Distribution names whose versions go into every result; absent ones are recorded as None.
_DISTS = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "ai-edge-litert",
    "litert",
    "optuna",
    "numpy",
)

# A marker quoted as inline code (`<!-- result: ... -->`, as in the README's own description of
# the syntax) is an example, not a marker.
MARKER = re.compile(r"(?<!`)<!--\s*result:\s*(?P<body>[^>]*?)\s*-->")


def _cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo (Linux), else `platform.processor()`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_gib() -> float | None:
    """Total memory in GiB from /proc/meminfo (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 2)
    except (OSError, ValueError, IndexError):
        pass
    return None


def loadavg() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


class LoadMonitor:
    """Samples the 1-minute load average every `interval_s` seconds in a daemon thread while
    a benchmark runs (`with LoadMonitor() as load: ...; load.summary()`): load before and after
    alone miss a job that shared the machine only in the middle."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            now = loadavg()
            if now is not None:
                self.samples.append(now[0])
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, Any] | None:
        """Mean and max of the 1-minute load samples and their count; None without samples."""
        if not self.samples:
            return None
        return {
            "mean_1min": round(sum(self.samples) / len(self.samples), 2),
            "max_1min": round(max(self.samples), 2),
            "samples": len(self.samples),
            "interval_s": self.interval_s,
        }


def machine_info(
    load_before: list[float] | None = None, load_during: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Platform, CPU model and counts, memory and load averages (before and during if given,
    and now)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "mem_total_gib": _mem_total_gib(),
        "loadavg_before": load_before,
        "loadavg_during": load_during,
        "loadavg_after": loadavg(),
    }


def _git(*args: str) -> str | None:
    """Output of a git command in the checkout, or None outside one (or without git)."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def versions() -> dict[str, Any]:
    """Python and package versions (None when not installed) and the segnas git commit."""
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in _DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    # A dirty tree means the figures may come from uncommitted code: say so rather than hide it.
    out["segnas_commit"] = commit
    out["segnas_dirty"] = bool(status) if status is not None else None
    return out


def write_result(
    name: str,
    figures: dict[str, Any],
    *,
    params: dict[str, Any] | None = None,
    load_before: list[float] | None = None,
    load_during: dict[str, Any] | None = None,
    results_dir: Path | None = None,
) -> Path:
    """Writes `<results_dir>/<name>.json` atomically and returns its path.

    `figures` holds the measured numbers (nested dicts allowed), `params` how the benchmark was
    run (argv, config overrides); `load_before` is `loadavg()` taken before measuring,
    `load_during` a `LoadMonitor.summary()` of the measuring.
    `results_dir` defaults to experiments/benchmarks/results/.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.endswith(".json"):
        raise ValueError(f"result name {name!r}: use letters, digits, '_', '-', '.', no .json")
    out_dir = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    write_json(
        path,
        {
            "name": name,
            "figures": figures,
            "params": params or {},
            "machine": machine_info(load_before, load_during),
            "versions": versions(),
            "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        },
    )
    return path


def read_figure(file: str, key: str, *, results_dir: Path | None = None) -> Any:
    """The value at dotted `key` (e.g. "figures.images_per_s") in results file `file` (a name
    under results/, e.g. "train_throughput.json"); list items are addressed by index ("a.0.b").
    Raises FileNotFoundError or KeyError naming what is missing."""
    path = (Path(results_dir) if results_dir is not None else RESULTS_DIR) / file
    if not path.is_file():
        raise FileNotFoundError(f"no result file {path}")
    value: Any = json.loads(path.read_text())
    done: list[str] = []
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            where = ".".join(done) or "top level"
            raise KeyError(f"{file}: no key {part!r} at {where} (looking up {key!r})")
        done.append(part)
    return value


def parse_marker(body: str) -> dict[str, Any]:
    """The fields of a marker body "FILE KEY [fmt=SPEC] [scale=K]"; ValueError if malformed."""
    words = body.split()
    if len(words) < 2 or "=" in words[0] or "=" in words[1]:
        raise ValueError(f"marker {body!r}: expected 'FILE KEY [fmt=SPEC] [scale=K]'")
    out: dict[str, Any] = {"file": words[0], "key": words[1], "fmt": None, "scale": 1.0}
    for opt in words[2:]:
        k, sep, v = opt.partition("=")
        if not sep or k not in ("fmt", "scale"):
            raise ValueError(f"marker {body!r}: unknown option {opt!r} (fmt=, scale=)")
        out[k] = float(v) if k == "scale" else v
    return out


def marker_errors(text: str, *, results_dir: Path | None = None) -> list[str]:
    """Every problem with the result markers in `text` (a README), one line each: a malformed
    marker, a missing file or key, a value that is not a number, or (with fmt=) a figure printed
    before the marker that differs from the stored value so formatted."""
    errors = []
    for m in MARKER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        where = f"line {line}: {m.group(0)}"
        try:
            spec = parse_marker(m.group("body"))
            value = read_figure(spec["file"], spec["key"], results_dir=results_dir)
        except (ValueError, KeyError, FileNotFoundError) as e:
            # KeyError's str() quotes its message; show the message itself.
            errors.append(f"{where}: {e.args[0] if isinstance(e, KeyError) else e}")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{where}: {spec['key']} is {value!r}, not a number")
            continue
        if spec["fmt"] is None:
            continue
        try:
            # An int stays an int unless scaled, so that fmt="," prints 2,971,952, not ...952.0.
            scaled = value if spec["scale"] == 1.0 else value * spec["scale"]
            shown = format(scaled, spec["fmt"])
        except ValueError as e:
            errors.append(f"{where}: fmt={spec['fmt']}: {e}")
            continue
        before = text[: m.start()].rstrip()
        # The figure may be followed by its unit ("51.3 images/s<!-- ... -->"): it must appear
        # as the last number in the few characters before the marker.
        tail = before[-40:]
        numbers = re.findall(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?", tail)
        if not numbers or numbers[-1] != shown:
            got = numbers[-1] if numbers else "no number"
            errors.append(f"{where}: README shows {got}, result is {shown}")
    return errors


def markers(text: str) -> list[dict[str, Any]]:
    """The parsed markers in `text`, in order (malformed ones skipped; see `marker_errors`)."""
    out = []
    for m in MARKER.finditer(text):
        try:
            out.append(parse_marker(m.group("body")))
        except ValueError:
            continue
    return out
