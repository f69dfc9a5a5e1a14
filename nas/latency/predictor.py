"""Predicted latency: a model's block latencies from the table, combined by a fit on whole
models (`fit.py`: one scale per block kind plus an offset, cross-fitted so that no prediction
uses its own measurement).

Blocks measured alone miss what happens between them in a whole model (the interpreter's
per-call cost paid once instead of once per block, data handed over in cache, layouts changed
across block borders), by an amount that depends on the kind of block; `build` measures whole
models (the calibration points, a seeded sample of the space) and fits the correction.

The public API for the search: `load_table(path)`, `predict(arch, table)`,
`missing_signatures(arch, table)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nas.errors import UserError
from nas.latency import fit
from nas.latency.blocks import Block, decompose
from nas.latency.measure import TARGETS
from nas.latency.table import LatencyTable, load_table
from nas.space.arch import Arch

__all__ = [
    "load_table",
    "predict",
    "missing_signatures",
    "block_sum",
    "block_kind_sums",
    "signatures",
    "remember_blocks",
    "build_command",
]


# (arch, output) -> its signatures. Tracing a model takes ~1-2 s, and a table build traces
# every arch of its space once to collect blocks and again to fit its calibration points:
# `remember_blocks` lets the first pass fill this (the quickstart space on one core: table
# build 190 s -> 119 s with `cost.abstract_variables` cached too, cProfile on).
_SIGNATURES: dict[tuple[Arch, str], tuple[str, ...]] = {}


def signatures(arch: Arch, output: str = "logits") -> tuple[str, ...]:
    """The block signatures of `arch`, in execution order (cached: tracing takes ~1 s)."""
    if (arch, output) not in _SIGNATURES:
        remember_blocks(arch, output, decompose(arch, output))
    return _SIGNATURES[(arch, output)]


def remember_blocks(arch: Arch, output: str, blocks: Sequence[Block]) -> tuple[str, ...]:
    """Caches the signatures of `blocks`, `decompose(arch, output)` computed by the caller;
    returns them."""
    keys = tuple(b.key for b in blocks if b.key)
    _SIGNATURES[(arch, output)] = keys
    return keys


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


def block_kind_sums(
    arch: Arch, table: LatencyTable, output: str | None = None, arch_file: str | Path = "ARCH.json"
) -> dict[str, float]:
    """`arch`'s block latencies (ms) summed by block kind; UserError as `block_sum`."""
    block_sum(arch, table, output, arch_file)  # the missing-signature check and its message
    return fit.kind_sums(signatures(arch, _output(table, output)), table.entries)


def predict(
    arch: Arch, table: LatencyTable, output: str | None = None, arch_file: str | Path = "ARCH.json"
) -> float:
    """Predicted latency of `arch` in ms on the table's target, for the model output the
    table was built for ("logits" or "labels") unless `output` says otherwise: the table's
    fit applied to the block sums (the fit of the fold that left `arch` out when `arch` is a
    calibration point), or the plain block sum when the table has no calibration."""
    cal = table.calibration
    if not cal:
        return block_sum(arch, table, output, arch_file)
    if "coef" not in cal:  # a table written before per-kind fits: one scale and offset
        return float(cal["scale"] * block_sum(arch, table, output, arch_file) + cal["offset_ms"])
    return fit.apply(fit.fit_for(cal, arch.id), block_kind_sums(arch, table, output, arch_file))
