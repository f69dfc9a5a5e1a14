"""Random architectures of the `full` space: build, run forward, export to TFLite, parity.

    .venv/bin/python experiments/benchmarks/export_full_space.py     # 20 archs, ~20 min idle
    .venv/bin/python experiments/benchmarks/export_full_space.py --n 3 --no-save

Draws `n` archs of `nas.space.presets.SPACES["full"]` (every encoder and head family, output
stride 8 / 16 / 32, widths, depths, conv types; seeded, distinct), each at a random size among
`--sizes` (square and non-square: the space's own 128-512 px would make the run hours long at
output stride 8), builds it with random weights (Flax's initialisers; BatchNorm statistics drawn
near identity, so a layer's normalisation is not the trivial one), runs it forward in JAX,
exports it with `nas.export.policy.export_candidate` (float32 logits, timed alone) and records
the exporter's parity against JAX on `--inputs` random images: the largest absolute logit
difference and the argmax agreement, and whether the exporter's thresholds passed. One failure
(an exception or a failed parity) is recorded with its message and the run goes on. The figures
go to experiments/benchmarks/results/export_full_space.json (`--name`, `--no-save`).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

import jax  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from nas.export import policy  # noqa: E402
from nas.space.arch import Arch  # noqa: E402
from nas.space.build import build_model  # noqa: E402
from nas.space.presets import SPACES  # noqa: E402

SIZES = ((96, 96), (128, 128), (96, 160), (160, 96))


def variables_for(arch: Arch, seed: int) -> Any:
    """Random variables: Flax's initialisers for params, BatchNorm statistics near identity."""
    model = build_model(arch)
    x = np.zeros((1, *arch.resolution, 3), np.float32)
    variables = jax.jit(model.init)(jax.random.key(seed), x)
    rng = np.random.default_rng(seed)

    def stat(path: tuple, leaf: jax.Array) -> np.ndarray:
        name = getattr(path[-1], "key", "")
        shape = np.shape(leaf)
        if name == "mean":
            return rng.normal(0.0, 0.1, shape).astype(np.float32)
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)  # "var"

    if "batch_stats" in variables:
        stats = jax.tree_util.tree_map_with_path(stat, variables["batch_stats"])
        variables = {**variables, "batch_stats": stats}
    return variables


def one(arch: Arch, seed: int, inputs: int, folder: Path) -> dict[str, Any]:
    """Builds, runs and exports `arch`; its row of the result."""
    row: dict[str, Any] = {"arch": arch.to_dict(), "id": arch.id, "label": arch.label()}
    start = time.time()
    try:
        variables = variables_for(arch, seed)
        images = np.random.default_rng(seed).uniform(-1, 1, (inputs, *arch.resolution, 3))
        images = images.astype(np.float32)
        logits = np.asarray(policy.inference_fn(arch, variables)(images[:1]))
        row["forward_shape"] = list(logits.shape)
        row["forward_finite"] = bool(np.isfinite(logits).all())
        report = policy.export_candidate(
            arch,
            variables,
            folder / f"{arch.id}.tflite",
            parity_inputs=images,
            force=True,  # a failed parity is recorded here, not raised
            companion_sets=(),
        )
        p = report["parity"]
        row.update(
            passed=bool(p["passed"]),
            max_abs_diff=p["max_abs_diff"],
            argmax_agreement=p["argmax_agreement"],
            logit_scale=float(np.max(np.abs(logits))),
            ops=sorted(report["ops"]),
            bytes=report["bytes"],
            latency_ms=report["latency_ms"],
        )
    except Exception as e:  # noqa: BLE001 (one arch's failure is a figure, not the end)
        row.update(passed=False, error=f"{type(e).__name__}: {e}"[:500])
    row["seconds"] = round(time.time() - start, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; exit 1 when any arch failed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="archs to draw (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs", type=int, default=8, help="parity images per arch (default 8)")
    p.add_argument("--name", default="export_full_space", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)

    space, rng = SPACES["full"], random.Random(args.seed)
    archs: dict[str, Arch] = {}
    while len(archs) < args.n:
        a = Arch.sample(space, rng).replace(resolution=rng.choice(SIZES))
        archs.setdefault(a.id, a)
    load_before, start = loadavg(), time.time()
    rows = []
    with LoadMonitor() as monitor, tempfile.TemporaryDirectory(prefix="segnas_xf_") as tmp:
        for i, arch in enumerate(tqdm(list(archs.values()), desc="export", unit="arch")):
            rows.append(one(arch, args.seed + i, args.inputs, Path(tmp)))
            r = rows[-1]
            tqdm.write(
                f"{r['label']}: passed={r['passed']} max_abs_diff={r.get('max_abs_diff')} "
                f"agreement={r.get('argmax_agreement')} {r.get('error', '')}"
            )
    figures = {
        "n": len(rows),
        "passed": sum(r["passed"] for r in rows),
        "families": sorted(
            {f"{r['arch']['encoder']['name']}+{r['arch']['decoder']['name']}" for r in rows}
        ),
        "output_strides": sorted({r["arch"]["output_stride"] for r in rows}),
        "max_abs_diff": max((r.get("max_abs_diff") or 0.0) for r in rows),
        "min_argmax_agreement": min((r.get("argmax_agreement") or 0.0) for r in rows),
        "wall_s": round(time.time() - start, 1),
        "rows": rows,
    }
    print(
        f"{figures['passed']} / {figures['n']} passed; max_abs_diff {figures['max_abs_diff']:.2e}"
        f", min argmax agreement {figures['min_argmax_agreement']:.5f}, {figures['wall_s']} s"
    )
    if not args.no_save:
        path = write_result(
            args.name,
            figures,
            params=dict(n=args.n, seed=args.seed, inputs=args.inputs, sizes=SIZES),
            load_before=load_before,
            load_during=monitor.summary(),
        )
        print(f"wrote {path}")
    return 0 if figures["passed"] == figures["n"] else 1


if __name__ == "__main__":
    sys.exit(main())
