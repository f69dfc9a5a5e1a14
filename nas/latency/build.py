"""Building a latency table: every block signature a space can produce, measured once, then a
calibration on a few whole models.

Resumable by construction: the table is rewritten atomically after every chunk of signatures
(and every chunk of calibration models), and a re-run measures only what the table lacks, so a
kill loses at most the chunk in flight. Signatures are measured in chunks of `chunk`, each
chunk interleaved (see `measure.py`) and drawn in a shuffled order, so one chunk mixes blocks
of every kind and size rather than timing all the large ones during one burst of load.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nas.errors import UserError
from nas.latency import context, fit, measure
from nas.latency.blocks import Block, decompose, micro_model, whole_model
from nas.latency.predictor import remember_blocks, signatures
from nas.latency.table import LatencyTable, load_table, now
from nas.space.arch import Arch
from nas.space.resolve import resolve_space_spec
from nas.space.space import Space, resolutions

# Measurement settings a config may set (the `measure` field), with their defaults.
DEFAULT_SETTINGS: dict[str, Any] = {
    "rounds": measure.ROUNDS,
    "warmup": measure.WARMUP,
    "chunk": 16,
    "seed": 0,
    "window_s": measure.WINDOW_S,
}
# Whole models for the fit (fit.py): 100, or the whole space when it is smaller.
DEFAULT_CALIBRATION: dict[str, Any] = {"n": 100, "seed": 1}


def space_of(space: Any, sizes: Sequence[int] = ()) -> Space:
    """A Space from a name of nas.space.presets.SPACES or a Space dict, its resolutions replaced by
    the square `sizes` when given."""
    result = space if isinstance(space, Space) else resolve_space_spec(space, "config.space")
    if sizes:
        try:
            result = result.replace(resolution=resolutions(sizes))
        except (TypeError, ValueError) as e:
            raise UserError(f"config.resolutions: {e}") from None
    return result


def settings_of(overrides: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated with `overrides`; UserError naming a key `defaults` lacks."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise UserError(f"config: unknown setting {unknown[0]!r}; allowed: {', '.join(defaults)}")
    return {**defaults, **overrides}


def collect_blocks(archs: Iterable[Arch], output: str, progress: bool = True) -> dict[str, Block]:
    """Signature -> one block having it, over every block of every arch."""
    archs = list(archs)
    blocks: dict[str, Block] = {}
    for arch in tqdm(archs, desc="tracing archs", unit="arch", disable=not progress):
        arch_blocks = decompose(arch, output)
        remember_blocks(arch, output, arch_blocks)  # the calibration fit needs them again
        for b in arch_blocks:
            if b.key:
                blocks.setdefault(b.key, b)
    return blocks


def open_table(
    out: Path,
    env: dict[str, Any],
    settings: dict[str, Any],
    space: Space | None,
    allow_foreign: bool,
) -> LatencyTable:
    """The table at `out` to resume (same environment), or a new empty one; either is marked
    incomplete until `build_table` finishes (so a kill mid-build is visible to the next run)."""
    if out.exists():
        table = load_table(out)
        table.check_environment(env, "this machine", allow_foreign)
        table.complete = False
        return table
    return LatencyTable(
        env,
        settings={k: v for k, v in settings.items() if k != "chunk"},
        space=space.to_dict() if space else None,
        path=out,
        complete=False,
    )


def set_reference(table: LatencyTable, median_ms: float) -> None:
    """The table's reference scale: the reference program's median in its first chunk."""
    if table.reference is None:
        table.reference = {
            "arch": context.REFERENCE.to_dict(),
            "median_ms": round(median_ms, 6),
            "date": now(),
        }


def time_chunk(
    timers: dict[str, measure.Timer],
    settings: dict[str, Any],
    start: int,
    reference: measure.Timer | None,
) -> tuple[dict[str, list[float]], float | None]:
    """`measure.measure_chunk` with a build's settings; `start` (the chunk's first index) varies
    the seed of the interleaving order from chunk to chunk."""
    return measure.measure_chunk(
        timers,
        settings["rounds"],
        settings["warmup"],
        settings["seed"] + start,
        reference,
        settings.get("window_s", 0.0),
    )


def measure_blocks(
    table: LatencyTable,
    blocks: dict[str, Block],
    target: str,
    threads: int,
    settings: dict[str, Any],
    out: Path,
    progress: bool = True,
) -> list[str]:
    """Measures the signatures `table` lacks, saving after every chunk; returns their keys."""
    pending = [k for k in blocks if k not in table.entries]
    random.Random(settings["seed"]).shuffle(pending)
    bar = tqdm(
        total=len(pending), desc=f"measuring blocks ({target})", unit="sig", disable=not progress
    )
    reference = context.reference_timer(target, threads) if pending else None
    for start in range(0, len(pending), settings["chunk"]):
        chunk = pending[start : start + settings["chunk"]]
        timers = {
            k: measure.make_timer(target, *micro_model(blocks[k]), threads=threads) for k in chunk
        }
        samples, ref = time_chunk(timers, settings, start, reference)
        set_reference(table, ref)
        for k in chunk:
            b = blocks[k]
            table.entries[k] = {
                **measure.summarize(context.rescale(samples[k], table.reference["median_ms"], ref)),
                "raw_median_ms": round(statistics.median(samples[k]), 6),
                "reference_ms": round(ref, 6),
                "kind": b.kind,
                "path": b.path,
                "fields": b.fields,
                "inputs": [list(s) for s in b.inputs],
                "macs": b.macs,
                "date": now(),
            }
        table.save(out)
        bar.update(len(chunk))
    bar.close()
    return pending


def measure_models(
    archs: Sequence[Arch],
    target: str,
    threads: int,
    settings: dict[str, Any],
    output: str = "logits",
    progress: bool = True,
    desc: str = "models",
    on_chunk=None,
    table: LatencyTable | None = None,
) -> dict[str, dict]:
    """Whole-model statistics by arch id, measured in interleaved chunks; `on_chunk(done)`
    is called after each chunk with the results so far (to save them). With a `table`, the
    reference program is timed in every chunk and the figures are put on the table's scale
    (`raw_median_ms` and the chunk's `reference_ms` kept beside them)."""
    results: dict[str, dict] = {}
    bar = tqdm(total=len(archs), desc=desc, unit="model", disable=not progress)
    step = max(1, settings["chunk"] // 2)  # whole models are larger: smaller chunks
    reference = context.reference_timer(target, threads) if table is not None and archs else None
    for start in range(0, len(archs), step):
        chunk = archs[start : start + step]
        timers = {
            a.id: measure.make_timer(target, *whole_model(a, output), threads=threads)
            for a in chunk
        }
        samples, ref = time_chunk(timers, settings, start, reference)
        for k, v in samples.items():
            if table is None:
                results[k] = measure.summarize(v)
                continue
            set_reference(table, ref)
            results[k] = {
                **measure.summarize(context.rescale(v, table.reference["median_ms"], ref)),
                "raw_median_ms": round(statistics.median(v), 6),
                "reference_ms": round(ref, 6),
            }
        if on_chunk:
            on_chunk(results)
        bar.update(len(chunk))
    bar.close()
    return results


def calibrate(
    table: LatencyTable,
    archs: Sequence[Arch],
    n: int,
    seed: int,
    target: str,
    threads: int,
    settings: dict[str, Any],
    out: Path,
    output: str = "logits",
    progress: bool = True,
) -> dict:
    """Measures up to `n` of `archs` (a seeded sample) whole, reusing points the table has,
    and fits the calibration; the table is saved after every chunk."""
    # Points measured before (a resumed build, or a table extended with --arch) are kept:
    # more whole models only make the fit better, and validation leaves all of them out.
    old = {p["id"]: p for p in (table.calibration or {}).get("points", [])}
    chosen = random.Random(seed).sample(list(archs), min(n, len(archs))) if n > 0 else []
    todo = [a for a in chosen if a.id not in old]

    def refit(measured: dict[str, dict]) -> None:
        points = dict(old)
        for a in todo:
            if a.id in measured:
                points[a.id] = {"id": a.id, "arch": a.to_dict(), "measured": measured[a.id]}
        table.calibration = fit_points(table, list(points.values()), output)
        table.save(out)

    if todo:
        measure_models(
            todo,
            target,
            threads,
            settings,
            output,
            progress,
            desc=f"calibrating ({target})",
            on_chunk=refit,
            table=table,
        )
    elif old:
        refit({})  # new entries may have changed the block sums
    return table.calibration or {}


def fit_points(table: LatencyTable, points: list[dict], output: str = "logits") -> dict:
    """The table's calibration (see `fit.py`) from whole-model points `{id, arch, measured}`;
    each point gets its block sums (ms, total and by kind) from the table's entries."""
    for p in points:
        sums = fit.kind_sums(signatures(Arch.from_dict(p["arch"]), output), table.entries)
        p["block_sum_ms"] = round(sum(sums.values()), 6)
        p["kind_sums_ms"] = {k: round(v, 6) for k, v in sums.items()}
    result = fit.calibrate(
        [p["id"] for p in points],
        [p["kind_sums_ms"] for p in points],
        [p["measured"]["median_ms"] for p in points],
    )
    return {**result, "date": now(), "points": points}


def build_table(
    archs: Sequence[Arch],
    out: Path | str,
    target: str = "litert-cpu",
    threads: int = 1,
    space: Space | None = None,
    output: str = "logits",
    measure_settings: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
    allow_foreign: bool = False,
    progress: bool = True,
) -> LatencyTable:
    """Measures every block signature of `archs` the table at `out` lacks (creating it), then
    calibrates on a seeded sample of `archs`; returns the saved table."""
    from nas.latency.table import environment

    measure.check_target(target, threads)
    out = Path(out)
    m = settings_of(measure_settings, DEFAULT_SETTINGS)
    cal = settings_of(calibration, DEFAULT_CALIBRATION)
    env = environment(target, threads, measure.clock_name(target, threads))
    table = open_table(out, env, {**m, "output": output}, space, allow_foreign)
    blocks = collect_blocks(archs, output, progress)
    measure_blocks(table, blocks, target, threads, m, out, progress)
    calibrate(table, archs, cal["n"], cal["seed"], target, threads, m, out, output, progress)
    table.complete = True
    table.save(out)
    return table


def build_table_for_space(
    space: Space,
    target: str = "litert-cpu",
    out: Path | str = "",
    threads: int = 1,
    progress: bool = True,
) -> LatencyTable:
    """`build_table` over every arch of `space` (its full grid) with default settings."""
    from nas.latency.table import default_path

    return build_table(
        list(space.grid()),
        out or default_path(target, threads),
        target,
        threads,
        space=space,
        progress=progress,
    )


def space_of_config(cfg: Any) -> Any:
    """The config's `space` (name or Space dict) with its `resolutions` applied."""
    if cfg.get("space", None) is None:
        raise UserError(
            "config.space: missing; allowed: a name of nas.space.presets.SPACES or a Space dict"
        )
    return space_of(cfg.space, tuple(cfg.get("resolutions", ()) or ()))
