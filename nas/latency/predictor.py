"""Predicted latency: the sum of a model's block latencies, corrected by a calibration fitted on
whole models.

Blocks measured alone miss what happens between them in a whole model (the interpreter's
per-invoke cost paid once instead of once per block, caches warm or cold, tensors handed over
in memory). `build` measures whole models (24 by default, a seeded sample of the space) and
fits

    measured ≈ scale * block_sum + offset_ms

by least squares on *relative* error (each point weighted by 1 / measured², so a 2 ms and a
40 ms model count alike, as the ±10 % acceptance does). On the 2-core x86 VM segnas is
developed on, LiteRT + XNNPACK at 1 thread gave scale ≈ 0.9 and |offset| < 0.3 ms; fitted on
all 70 models of one run the residuals stayed within 7 %, so a richer model (per block kind,
per resolution, block counts) did not pay: with 10 calibration models it was worse.

The public API for the search: `load_table(path)`, `predict(arch, table)`,
`missing_signatures(arch, table)`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas.errors import UserError
from nas.latency.blocks import decompose
from nas.latency.measure import TARGETS
from nas.latency.table import LatencyTable, load_table
from nas.space.arch import Arch

__all__ = [
    "load_table",
    "predict",
    "missing_signatures",
    "block_sum",
    "fit_calibration",
    "signatures",
    "build_command",
]


@functools.lru_cache(maxsize=1024)
def signatures(arch: Arch, output: str = "logits") -> tuple[str, ...]:
    """The block signatures of `arch`, in execution order (cached: tracing takes ~1 s)."""
    return tuple(b.key for b in decompose(arch, output) if b.key)


def _output(table: LatencyTable, output: str | None) -> str:
    """The model output a prediction is for: the one the table was built for by default."""
    return output or table.settings.get("output", "logits")


def missing_signatures(arch: Arch, table: LatencyTable, output: str | None = None) -> list[str]:
    """Signatures of `arch` the table has no entry for (each once, in execution order)."""
    return list(
        dict.fromkeys(k for k in signatures(arch, _output(table, output)) if k not in table.entries)
    )


def build_command(table: LatencyTable, arch_file: str | Path = "ARCH.json") -> str:
    """The command that measures an arch's missing blocks into `table`."""
    out = table.path or "TABLE.json"
    if table.target in TARGETS:
        return (
            f"segnas latency build --target {table.target} --threads {table.threads} "
            f"--arch {arch_file} --out {out}"
        )
    return (
        f"segnas latency export-bench --arch {arch_file} --out DIR, run DIR/README.md on "
        f"the device, then segnas latency import --manifest DIR/manifest.json "
        f"--results RESULTS.txt --out {out}"
    )


def block_sum(
    arch: Arch, table: LatencyTable, output: str | None = None, arch_file: str | Path = "ARCH.json"
) -> float:
    """Sum of the median latencies (ms) of `arch`'s blocks; UserError listing any missing
    signature and the command that measures them."""
    missing = missing_signatures(arch, table, output)
    if missing:
        raise UserError(
            f"latency table {table.path or '(unsaved)'}: {len(missing)} block signature(s) of "
            f"arch {arch.id} not measured: {', '.join(missing)}; measure them with: "
            f"{build_command(table, arch_file)}"
        )
    keys = signatures(arch, _output(table, output))
    return float(sum(table.entries[k]["median_ms"] for k in keys))


def predict(
    arch: Arch, table: LatencyTable, output: str | None = None, arch_file: str | Path = "ARCH.json"
) -> float:
    """Predicted latency of `arch` in ms on the table's target (calibrated when the table
    has a calibration, else the plain block sum), for the model output the table was built
    for ("logits" or "labels") unless `output` says otherwise."""
    total = block_sum(arch, table, output, arch_file)
    cal = table.calibration
    if not cal:
        return total
    return float(cal["scale"] * total + cal["offset_ms"])


def fit_calibration(block_sums: Sequence[float], measured: Sequence[float]) -> dict:
    """`{scale, offset_ms, n, max_abs_pct_residual}` from paired whole-model measurements.

    Two or more points: least squares on the relative residuals (predicted / measured - 1);
    one point: the ratio alone. UserError with none or with a non-positive measurement.
    """
    x, y = np.asarray(block_sums, float), np.asarray(measured, float)
    if len(x) == 0 or len(x) != len(y):
        raise UserError(
            f"calibration: got {len(x)} block sums and {len(y)} measurements; "
            "allowed: one or more pairs"
        )
    if np.any(y <= 0) or np.any(x <= 0):
        raise UserError("calibration: got a non-positive latency; allowed: positive times")
    if len(x) == 1 or np.ptp(x) == 0:
        scale, offset = float(np.mean(y / x)), 0.0
    else:
        a = np.stack([x, np.ones_like(x)], axis=1) / y[:, None]
        (scale, offset), *_ = np.linalg.lstsq(a, np.ones_like(y), rcond=None)
    pred = scale * x + offset
    return {
        "scale": round(float(scale), 6),
        "offset_ms": round(float(offset), 6),
        "n": int(len(x)),
        "max_abs_pct_residual": round(float(np.max(np.abs(pred / y - 1)) * 100), 3),
    }
