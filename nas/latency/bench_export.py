"""Tables for a phone (or any device segnas does not run on): export the micro-benchmarks, let
LiteRT's standard `benchmark_model` tool time them on the device, import its output.

`export_bench` writes into a new directory: one `.tflite` per block signature (and one whole
model per calibration arch), `manifest.json` (file -> signature, arch), `run_all.sh` (the
loop to run on the device) and `README.md` (how). The directory is assembled under a temporary
name and renamed at the end, so an interrupted export leaves nothing behind.

`parse_results` reads the tool's stdout/stderr, concatenated over all files. A run starts at
its parameter line `Graph: [path]` (which names the file). Its timing is the **last**
`count=...` line of the run: the tool prints one for the warm-up phase and one for the timed
runs, e.g.

    INFO: count=50 first=22680 curr=22635 min=22369 max=23212 avg=22652.2 std=160

(newer builds append `p5=... median=... p95=...`; a run whose samples were identical prints
`count=50 curr=1234(all same)`). Values are microseconds. The entry's `median_ms` is the
`median=` field when present, else `avg=` (older tools print no median). The closing summary
`Inference timings in us: Init: ..., First inference: ..., Warmup (avg): ...,
Inference (avg): ...` is used only when a run has no `count=` line. Thread count comes from
`#threads used for CPU inference: [N]` (or `Num threads: [N]`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nas.errors import UserError
from nas.latency.blocks import Block, micro_model, whole_model
from nas.latency.table import LatencyTable, now, package_version
from nas.space.arch import Arch

MANIFEST_SCHEMA = "segnas.latency_manifest/1"
_GRAPH = re.compile(r"Graph: \[(?P<path>[^\]]*)\]")
_COUNT = re.compile(r"count=(?P<count>\d+)(?P<rest>[^\n]*)")
_FIELD = re.compile(r"(?P<name>first|curr|min|max|avg|std|p5|median|p95)=(?P<value>[-\d.e+]+)")
_SUMMARY = re.compile(r"Inference timings in us:.*Inference \(avg\): (?P<avg>[\d.e+]+)")
_THREADS = re.compile(r"(?:#threads used for CPU inference|Num threads): \[(?P<n>-?\d+)\]")

README = """# segnas latency micro-benchmarks

{n_blocks} block models and {n_models} whole models exported by segnas {segnas} for the
latency table of a device. Each `.tflite` takes random float32 inputs; `manifest.json` maps
every file to its block signature (or calibration arch).

1. Get LiteRT's `benchmark_model` for the device (e.g. the `android_aarch64_benchmark_model`
   nightly binary, or build `//tflite/tools/benchmark:benchmark_model`).
2. Copy the files and the tool, then run every model, one at a time:

   ```
   adb push {dirname} /data/local/tmp/segnas_bench
   adb push android_aarch64_benchmark_model /data/local/tmp/benchmark_model
   adb shell chmod +x /data/local/tmp/benchmark_model
   adb shell "cd /data/local/tmp/segnas_bench && \\
       sh run_all.sh /data/local/tmp/benchmark_model" > results.txt 2>&1
   ```

   `run_all.sh` runs, for each file,
   `benchmark_model --graph=FILE --num_threads={threads} --num_runs=50 --warmup_runs=10 --use_xnnpack=true`
   and keeps the tool's output (its `Graph: [...]` line names the file).
   Keep the phone cool, charged and idle; on big.LITTLE phones pin to the big cores, e.g. prefix the
   tool with `taskset f0`.
3. Import the output into a table on the host:

   ```
   segnas latency import --manifest {dirname}/manifest.json --results results.txt \\
       --device "PHONE MODEL" --out latency_tables/PHONE.json
   ```
"""

RUN_ALL = """#!/bin/sh
# Usage: sh run_all.sh PATH/TO/benchmark_model   (run inside this directory, on the device)
tool="${{1:-./benchmark_model}}"
for f in *.tflite; do
  "$tool" --graph="$f" --num_threads={threads} --num_runs=50 --warmup_runs=10 --use_xnnpack=true 2>&1
done
"""


def export_bench(
    blocks: dict[str, Block],
    calibration: Sequence[Arch],
    out: Path,
    threads: int = 1,
    output: str = "logits",
    space: dict | None = None,
    progress: bool = True,
) -> Path:
    """Writes the directory described in the module docstring; UserError if `out` exists."""
    from nas.export import tflite

    out = Path(out)
    if out.exists():
        raise UserError(f"out: {str(out)!r} already exists; allowed: a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        files, models = [], []
        for i, (key, b) in enumerate(
            tqdm(blocks.items(), desc="exporting blocks", unit="sig", disable=not progress)
        ):
            name = f"b{i:04d}_{b.kind}_{key.rsplit('#', 1)[1]}.tflite"
            fn, inputs = micro_model(b)
            (tmp / name).write_bytes(_convert(tflite, fn, inputs, len(b.outputs)))
            files.append(
                {
                    "file": name,
                    "key": key,
                    "kind": b.kind,
                    "path": b.path,
                    "fields": b.fields,
                    "inputs": [list(s) for s in b.inputs],
                    "macs": b.macs,
                }
            )
        for a in calibration:
            name = f"m_{a.id}.tflite"
            fn, inputs = whole_model(a, output)
            (tmp / name).write_bytes(_convert(tflite, fn, inputs, 1))
            models.append({"file": name, "id": a.id, "arch": a.to_dict()})
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "created": now(),
            "threads": threads,
            "output": output,
            "space": space,
            "runtime": {p: package_version(p) for p in ("segnas", "jax", "litert-converter")},
            "blocks": files,
            "models": models,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / "run_all.sh").write_text(RUN_ALL.format(threads=threads))
        (tmp / "README.md").write_text(
            README.format(
                n_blocks=len(files),
                n_models=len(models),
                segnas=package_version("segnas"),
                dirname=out.name,
                threads=threads,
            )
        )
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _convert(tflite, fn, inputs, n_out: int) -> bytes:
    return tflite.convert(
        fn, inputs, [f"x{i}" for i in range(len(inputs))], [f"y{i}" for i in range(n_out)]
    )


def parse_results(text: str) -> dict[str, dict[str, Any]]:
    """File name -> `{median_ms, n, threads, avg_ms, std_ms, min_ms, max_ms, p5_ms, p95_ms}`
    (what the run printed) for every run in `text`; UserError if there is none."""
    starts = list(_GRAPH.finditer(text))
    if not starts:
        raise UserError(
            "results: no `Graph: [...]` line found; allowed: the output of LiteRT's "
            "benchmark_model (stdout and stderr), one run per model"
        )
    runs: dict[str, dict[str, Any]] = {}
    for m, nxt in zip(starts, starts[1:] + [None], strict=False):
        chunk = text[m.end() : nxt.start() if nxt else len(text)]
        name = Path(m.group("path").strip()).name
        stats = _parse_run(chunk)
        if stats is not None:
            runs[name] = stats
    return runs


def _parse_run(chunk: str) -> dict[str, Any] | None:
    threads = _THREADS.search(chunk)
    counts = list(_COUNT.finditer(chunk))
    stats: dict[str, Any] = {"threads": int(threads.group("n")) if threads else None}
    if counts:
        last = counts[-1]
        fields = {
            f.group("name"): float(f.group("value")) for f in _FIELD.finditer(last.group("rest"))
        }
        stats["n"] = int(last.group("count"))
        if "(all same)" in last.group("rest") and "curr" in fields:
            fields.setdefault("avg", fields["curr"])
        center = fields.get("median", fields.get("avg"))
        if center is None:
            return None
        stats["median_ms"] = center / 1e3
        stats.update(
            {
                f"{k}_ms": v / 1e3
                for k, v in fields.items()
                if k in ("avg", "std", "min", "max", "p5", "p95")
            }
        )
        return stats
    summary = _SUMMARY.search(chunk)
    if summary:
        stats.update(n=1, median_ms=float(summary.group("avg")) / 1e3)
        return stats
    return None


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest.json `export-bench` wrote; UserError if unreadable or of another schema."""
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(
            f"manifest: file {str(path)!r} not found; allowed: the manifest.json "
            "written by `segnas latency export-bench`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(
            f"manifest: cannot read {str(path)!r} ({type(e).__name__}); allowed: "
            "the manifest.json written by `segnas latency export-bench`"
        ) from None
    if not isinstance(d, dict) or d.get("schema") != MANIFEST_SCHEMA:
        raise UserError(
            f"manifest {path}: schema got "
            f"{d.get('schema') if isinstance(d, dict) else d!r}; allowed: "
            f"{MANIFEST_SCHEMA!r}"
        )
    return d


def import_results(
    manifest: dict[str, Any], runs: dict[str, dict[str, Any]], device: str, runtime: str = "unknown"
) -> tuple[LatencyTable, list[str]]:
    """A table (environment: the device) from parsed runs; also the manifest files that had
    no result. UserError when a run names a file the manifest does not list."""
    blocks = {f["file"]: f for f in manifest["blocks"]}
    models = {m["file"]: m for m in manifest.get("models", [])}
    unknown = sorted(set(runs) - set(blocks) - set(models))
    if unknown:
        raise UserError(
            f"results: run of {unknown[0]!r} is not in the manifest "
            f"({len(unknown)} such runs); allowed: files of this export-bench "
            "directory"
        )
    threads = sorted({r["threads"] for r in runs.values() if r["threads"] is not None})
    if len(threads) > 1:
        raise UserError(
            f"results: runs used different thread counts {threads}; allowed: "
            "one thread count per table"
        )
    env = {
        "target": "benchmark_model",
        "device": device,
        "threads": threads[0] if threads else manifest.get("threads", 1),
        "clock": "wall",
        "runtime": {"benchmark_model": runtime, **manifest.get("runtime", {})},
    }
    table = LatencyTable(
        env,
        settings={"output": manifest.get("output", "logits"), "source": "benchmark_model"},
        space=manifest.get("space"),
    )
    for name, f in blocks.items():
        if name in runs:
            stats = {k: v for k, v in runs[name].items() if k != "threads"}
            table.entries[f["key"]] = {
                **stats,
                "kind": f["kind"],
                "path": f["path"],
                "fields": f["fields"],
                "inputs": f["inputs"],
                "macs": f["macs"],
                "date": now(),
            }
    missing = [n for n in list(blocks) + list(models) if n not in runs]
    cal_runs = [(m, runs[n]) for n, m in models.items() if n in runs]
    if cal_runs:
        from nas.latency.build import fit_points
        from nas.latency.predictor import signatures

        output = manifest.get("output", "logits")
        pts = [
            {
                "id": m["id"],
                "arch": m["arch"],
                "measured": {k: v for k, v in r.items() if k != "threads"},
            }
            for m, r in cal_runs
            if all(k in table.entries for k in signatures(Arch.from_dict(m["arch"]), output))
        ]
        if pts:  # the same fit as a host table's: the phone's own whole models correct it
            table.calibration = fit_points(table, pts, output)
    return table, missing
