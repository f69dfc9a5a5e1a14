"""Which latency predictor: forms of the whole-model fit compared on held-out models.

    .venv/bin/python experiments/benchmarks/latency_predictors.py \\
        --table latency_tables/litert-cpu_t1.json --rows rows.json [--splits 50]

Input: a table built by `segnas latency build` (its calibration points are whole models
measured with the table's protocol) and the `--json` rows of latency_accuracy.py (held-out
models measured the same way). The models are pooled; each form is fitted on `k` of them drawn
at random (k = 24, 50, 100) and scored on all the others, `--splits` times per k. Printed and
written to experiments/benchmarks/results/latency_predictors.json: mean share within ±5 % and
±10 %, the worst split's share within ±10 %, and the median max |error|.

Forms (S: the block sum; S_k: its part from blocks of kind k; n: the number of blocks):
- `block_sum`: S, no fit;
- `global`: scale * S + offset (segnas's predictor before per-kind fits);
- `per_block_cost`: scale * S + c * n + offset (a fixed cost per block call);
- `macs`: scale * S + c * MACs + offset (compute the blocks' timings miss);
- `per_kind`: sum of w_k * S_k + offset, plain least squares;
- `per_kind_ridge`: the same pulled toward one scale (`nas/latency/fit.py`, segnas's choice).
All are least squares on relative residuals, as the ±10 % acceptance counts errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import write_result  # noqa: E402
from nas.latency import fit  # noqa: E402
from nas.latency.predictor import signatures  # noqa: E402
from nas.latency.table import load_table  # noqa: E402
from nas.space.arch import Arch  # noqa: E402

SIZES = (24, 50, 100)


def model_features(arch: Arch, entries: dict, output: str) -> dict:
    """S, S_k (by kind), n and MACs of one model from the table."""
    keys = signatures(arch, output)
    return {
        "S": sum(entries[k]["median_ms"] for k in keys),
        "kinds": fit.kind_sums(keys, entries),
        "n": len(keys),
        "macs": sum(entries[k].get("macs", 0) for k in keys) / 1e9,
    }


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    w, *_ = np.linalg.lstsq(x / y[:, None], np.ones(len(y)), rcond=None)
    return w


def _linear(columns):
    """A form fitted by relative least squares on the given feature columns (+ offset)."""

    def fit_predict(train: list[dict], y: np.ndarray, test: list[dict]) -> np.ndarray:
        def x(models):
            return np.array([[*columns(m), 1.0] for m in models])

        return x(test) @ _lstsq(x(train), y)

    return fit_predict


def _per_kind(ridge: float):
    def fit_predict(train: list[dict], y: np.ndarray, test: list[dict]) -> np.ndarray:
        f = fit.fit([m["kinds"] for m in train], y, ridge)
        return np.array([fit.apply(f, m["kinds"]) for m in test])

    return fit_predict


FORMS = {
    "block_sum": lambda train, y, test: np.array([m["S"] for m in test]),
    "global": _linear(lambda m: [m["S"]]),
    "per_block_cost": _linear(lambda m: [m["S"], m["n"]]),
    "macs": _linear(lambda m: [m["S"], m["macs"]]),
    "per_kind": _per_kind(0.0),
    "per_kind_ridge": _per_kind(fit.RIDGE),
}


def compare(models: list[dict], y: np.ndarray, splits: int, seed: int) -> dict:
    """Form -> k -> figures over `splits` random calibration sets of size k."""
    rng = np.random.default_rng(seed)
    out: dict = {name: {} for name in FORMS}
    for k in SIZES:
        if k >= len(y):
            continue
        draws = [rng.permutation(len(y)) for _ in range(splits)]
        for name, form in FORMS.items():
            w5, w10, worst = [], [], []
            for idx in draws:
                cal, test = idx[:k], idx[k:]
                pred = form([models[i] for i in cal], y[cal], [models[i] for i in test])
                e = fit.errors(pred, y[test])
                w5.append(e["within_5pct"])
                w10.append(e["within_10pct"])
                worst.append(e["max_abs_pct_error"])
            out[name][str(k)] = {
                "within_5pct": round(float(np.mean(w5)), 4),
                "within_10pct": round(float(np.mean(w10)), 4),
                "within_10pct_worst_split": round(float(np.min(w10)), 4),
                "max_abs_pct_error_median": round(float(np.median(worst)), 2),
            }
    return out


def main(argv: list[str]) -> int:
    """Pool the table's calibration points and the rows, compare the forms, print and save."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--rows", type=Path, required=True, help="latency_accuracy.py --json output")
    p.add_argument("--splits", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    table = load_table(args.table)
    output = table.settings.get("output", "logits")
    pooled = {
        pt["id"]: (pt["arch"], pt["measured"]["median_ms"]) for pt in table.calibration["points"]
    }
    for r in json.loads(args.rows.read_text())["rows"]:
        pooled.setdefault(r["id"], (r["arch"], r["measured_ms"]))
    models = [model_features(Arch.from_dict(a), table.entries, output) for a, _ in pooled.values()]
    y = np.array([m for _, m in pooled.values()])
    result = compare(models, y, args.splits, args.seed)
    print(f"{len(y)} models measured whole, {args.splits} random splits per calibration size")
    for name, by_k in result.items():
        cells = "  ".join(
            f"k={k}: {100 * v['within_10pct']:.1f} % ±10 "
            f"(worst {100 * v['within_10pct_worst_split']:.0f}), {100 * v['within_5pct']:.1f} % ±5"
            for k, v in by_k.items()
        )
        print(f"{name:15s} {cells}")
    if not args.no_save:
        figures = {"models": len(y), "splits": args.splits, "forms": result}
        params = {"argv": argv, "table": str(args.table), "environment": table.environment}
        print(f"result: {write_result('latency_predictors', figures, params=params)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
