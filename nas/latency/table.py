"""The latency table: JSON with a versioned schema, the measuring environment, and per-block
statistics; written atomically, checked on load, never silently mixed across environments.

Layout (`segnas.latency_table/1`):

    {"schema": "segnas.latency_table/1",
     "environment": {"target": "litert-cpu", "threads": 1, "clock": "thread-cpu",
                     "device": "AMD EPYC", "cores": 2, "machine": "x86_64", "system": "Linux",
                     "runtime": {"ai-edge-litert": "2.3.0", "jax": "0.10.2", "segnas": "0.1.0"}},
     "created": "2026-01-01T12:00:00Z", "updated": "...",
     "settings": {"rounds": 40, "warmup": 5, "chunk": 16, "seed": 0, ...},
     "space": {...Space.to_dict()...} or null,
     "entries": {"InvertedResidual@1x32x32x24#0123456789":
                     {"median_ms": 0.078, "p10_ms": 0.077, "p90_ms": 0.080, "mad_ms": 0.001,
                      "n": 40, "kind": "InvertedResidual", "fields": {...},
                      "inputs": [[1, 32, 32, 24]], "macs": 1234567, "date": "..."}},
     "calibration": {"model": "per-kind", "scale": 0.97, "coef": {"InvertedResidual": 0.95,
                     ...}, "offset_ms": 0.05, "folds": [...], "heldout": {...},
                     "points": [...]} or null}

`calibration` is the predictor's fit (nas/latency/fit.py); tables written before per-kind fits
hold only `scale` and `offset_ms`, which `predict` still applies. `reference`
(`{"arch": {...}, "median_ms": 3.3, "date": ...}`) is the reference program's latency when the
table was first measured: every figure of the table is on that scale (`measure.py`, "Drift").
`complete` is false while a build is under way (a killed build leaves it false, and the next
search or `segnas latency build` on the same file resumes it); tables without the field were
written before it existed and count as complete.

Two tables (or a table and this machine) belong to the same environment when their
`environment` objects are equal. Stores keep tables as JSON, never pickles: they must load
after any upgrade, and a human must be able to read where a number came from.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from nas.errors import UserError
from nas.io import atomic_write

SCHEMA = "segnas.latency_table/1"
# Every entry has these; tables built here add p10_ms, p90_ms and mad_ms, imported ones what
# the device's tool printed (p5_ms, p95_ms, std_ms, ...).
STAT_FIELDS = ("median_ms", "n")
_ALLOWED = f"a segnas latency table (schema {SCHEMA}) written by `segnas latency build`"


def now() -> str:
    """The current UTC time as ISO 8601 to the second, e.g. `2026-01-01T12:00:00Z`."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_path(target: str, threads: int) -> Path:
    """Where `segnas latency build` writes, and `predict` / `validate` look, by default."""
    return Path("latency_tables") / f"{target}_t{threads}.json"


def package_version(package: str) -> str:
    """The installed version of `package`, or "not installed"."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else platform.processor(), else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(target: str, threads: int, clock: str) -> dict[str, Any]:
    """This machine and runtime, as a table records it (no date: that is per entry)."""
    runtime = {"jax": package_version("jax"), "segnas": package_version("segnas")}
    if target == "litert-cpu":
        runtime["ai-edge-litert"] = package_version("ai-edge-litert")
        runtime["litert-converter"] = package_version("litert-converter")
        device = cpu_model()
    else:
        import jax

        runtime["jaxlib"] = package_version("jaxlib")
        runtime["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
        device = cpu_model() if target == "jax-cpu" else jax.devices("gpu")[0].device_kind
    return {
        "target": target,
        "threads": threads,
        "clock": clock,
        "device": device,
        "cores": os.cpu_count() or 0,
        "machine": platform.machine(),
        "system": platform.system(),
        "runtime": runtime,
    }


def describe_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """`field: A vs B` for every differing environment field, '; '-joined."""
    diffs = []
    for k in sorted(set(a) | set(b)):
        if k == "runtime" and isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            for r in sorted(set(a[k]) | set(b[k])):
                if a[k].get(r) != b[k].get(r):
                    diffs.append(f"runtime.{r}: {a[k].get(r)!r} vs {b[k].get(r)!r}")
        elif a.get(k) != b.get(k):
            diffs.append(f"{k}: {a.get(k)!r} vs {b.get(k)!r}")
    return "; ".join(diffs)


class LatencyTable:
    """Per-signature latency statistics measured in one environment, plus the calibration."""

    def __init__(
        self,
        environment: dict[str, Any],
        entries: dict[str, dict] | None = None,
        calibration: dict | None = None,
        settings: dict | None = None,
        space: dict | None = None,
        created: str | None = None,
        updated: str | None = None,
        path: Path | None = None,
        reference: dict | None = None,
        complete: bool = True,
    ):
        self.environment = environment
        self.complete = complete
        self.reference = reference
        self.entries: dict[str, dict] = dict(entries or {})
        self.calibration = calibration
        self.settings = dict(settings or {})
        self.space = space
        self.created = created or now()
        self.updated = updated or self.created
        self.path = path

    @property
    def target(self) -> str:
        """The environment's target, e.g. `litert-cpu`; "?" if unrecorded."""
        return self.environment.get("target", "?")

    @property
    def threads(self) -> int:
        """The threads the table was measured with (1 if unrecorded)."""
        return self.environment.get("threads", 1)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of the module docstring, entries sorted by signature."""
        return {
            "schema": SCHEMA,
            "environment": self.environment,
            "created": self.created,
            "updated": self.updated,
            "settings": self.settings,
            "space": self.space,
            "entries": dict(sorted(self.entries.items())),
            "calibration": self.calibration,
            "reference": self.reference,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "table") -> LatencyTable:
        """Validates the layout; UserError naming the first bad field otherwise."""
        if not isinstance(d, dict):
            raise UserError(f"{source}: got a JSON {type(d).__name__}; allowed: {_ALLOWED}")
        if d.get("schema") != SCHEMA:
            raise UserError(f"{source}: schema got {d.get('schema')!r}; allowed: {SCHEMA!r}")
        env, entries = d.get("environment"), d.get("entries")
        if not isinstance(env, dict) or not isinstance(env.get("target"), str):
            raise UserError(
                f"{source}: environment got {env!r}; allowed: an object with "
                "target, threads, device, runtime"
            )
        if not isinstance(entries, dict):
            raise UserError(
                f"{source}: entries got {type(entries).__name__}; allowed: an "
                "object of signature -> statistics"
            )
        entries = {_alias(k): e for k, e in entries.items()}
        d = {**d, "entries": entries}
        for key, e in entries.items():
            bad = [
                f
                for f in STAT_FIELDS
                if not isinstance(e, dict)
                or isinstance(e.get(f), bool)
                or not isinstance(e.get(f), (int, float))
                or e[f] < 0
            ]
            if bad:
                raise UserError(
                    f"{source}: entries[{key!r}].{bad[0]} missing, negative or "
                    f"not a number; allowed: an object with numbers >= 0 "
                    f"{', '.join(STAT_FIELDS)}"
                )
        cal = d.get("calibration")
        if cal is not None and not (
            isinstance(cal, dict)
            and all(isinstance(cal.get(f), (int, float)) for f in ("scale", "offset_ms"))
            and isinstance(cal.get("coef", {}), dict)
        ):
            raise UserError(
                f"{source}: calibration got {cal!r}; allowed: null or an object "
                "with numbers scale and offset_ms"
            )
        ref = d.get("reference")
        if ref is not None and not (
            isinstance(ref, dict)
            and isinstance(ref.get("median_ms"), (int, float))
            and ref["median_ms"] > 0
        ):
            raise UserError(
                f"{source}: reference got {ref!r}; allowed: null or an object with a "
                "positive number median_ms"
            )
        return cls(
            env,
            entries,
            cal,
            d.get("settings"),
            d.get("space"),
            d.get("created"),
            d.get("updated"),
            reference=ref,
            complete=d.get("complete", True) is not False,
        )

    def save(self, path: Path | str) -> Path:
        """Writes atomically (temporary file + rename): a kill leaves the old or the new
        table, never half of one."""
        path = Path(path)
        self.updated = now()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")
        self.path = path
        return path

    def check_environment(self, env: dict[str, Any], what: str, allow_foreign: bool) -> None:
        """UserError when `env` differs from the table's, unless `allow_foreign`."""
        diff = describe_difference(self.environment, env)
        if diff and not allow_foreign:
            raise UserError(
                f"table {self.path or ''}: measured in another environment than "
                f"{what} ({diff}); allowed: tables from one environment, or pass "
                "--allow-foreign to mix them knowingly"
            )

    def merge(self, other: LatencyTable, allow_foreign: bool = False) -> list[str]:
        """Adds `other`'s entries this table lacks; returns their keys. Refuses another
        environment unless `allow_foreign` (then the environment stays this table's)."""
        self.check_environment(other.environment, f"table {other.path or ''}", allow_foreign)
        added = [k for k in other.entries if k not in self.entries]
        factor = 1.0  # other's figures put on this table's reference scale
        if self.reference and other.reference:
            factor = self.reference["median_ms"] / other.reference["median_ms"]
        elif other.reference:
            self.reference = other.reference
        for k in added:
            e = dict(other.entries[k])
            for f in ("median_ms", "p10_ms", "p90_ms", "mad_ms"):
                if isinstance(e.get(f), (int, float)):
                    e[f] = round(e[f] * factor, 6)
            self.entries[k] = e
        if added:
            self.calibration = None  # fitted on other entries: refit (segnas latency build)
        return added


# Block kinds (module class names) renamed since a table was measured: old -> new. The program
# behind the key is unchanged, so the measurement carries over instead of being re-measured.
KIND_ALIASES = {"Seed000Decoder": "UNetDecoder"}


def _alias(key: str) -> str:
    kind, sep, rest = key.partition("@")
    return KIND_ALIASES.get(kind, kind) + sep + rest


def load_table(path: Path | str) -> LatencyTable:
    """Reads and validates a table; UserError (one line) for a missing, unreadable, malformed
    or foreign-schema file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(
            f"table: file {str(path)!r} not found; allowed: a table written by "
            "`segnas latency build` (or `segnas latency import`)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise UserError(
            f"table: cannot read {str(path)!r} ({reason}); allowed: a readable JSON file"
        ) from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(
            f"table {path}: malformed JSON ({e.msg} at line {e.lineno} column "
            f"{e.colno}); allowed: {_ALLOWED}"
        ) from None
    table = LatencyTable.from_dict(d, source=f"table {path}")
    table.path = path
    return table
