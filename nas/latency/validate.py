"""Checking a table against reality: predict N architectures, measure them whole, compare.

The archs are a seeded sample of distinct points of the table's space that were *not* used to
fit the calibration (a held-out set). Each is exported as a whole model (logits output, the
same random-weight program the exporter would convert) and timed with the table's protocol,
in interleaved chunks. Errors are in percent of the measured latency: `within_5pct` and
`within_10pct` (shares with |error| <= 5 % / 10 %), `median_abs_pct_error`,
`max_abs_pct_error`.

Beside them, `repeatability`: the first `repeat` archs are measured a second time after all
the others (minutes later, in another order), and the same statistics compare the second
measurement with the first. A predictor cannot be checked more finely than the machine
repeats itself: on a shared VM the two can differ by several percent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nas.errors import UserError
from nas.latency import fit
from nas.latency.build import measure_models
from nas.latency.predictor import predict
from nas.latency.table import LatencyTable
from nas.space.arch import Arch
from nas.space.space import Space

# Spaces up to this many archs are enumerated to sample without replacement; larger ones are
# sampled point by point, skipping repeats.
_ENUMERATE_MAX = 100_000


def sample_archs(space: Space, n: int, seed: int, exclude: Sequence[str] = ()) -> list[Arch]:
    """`n` distinct archs of `space` whose ids are not in `exclude`, in a seeded order."""
    if n < 1:
        raise UserError(f"n: got {n}; allowed: an integer >= 1")
    rng, skip = random.Random(seed), set(exclude)
    if space.size() <= _ENUMERATE_MAX:
        pool = [a for a in space.grid() if a.id not in skip]
        if len(pool) < n:
            raise UserError(
                f"n: got {n}, but the space has only {len(pool)} archs outside the "
                f"{len(skip)} calibration archs; allowed: n <= {len(pool)}"
            )
        return rng.sample(pool, n)
    found: dict[str, Arch] = {}
    for _ in range(100 * n):
        a = Arch.sample(space, rng)
        if a.id not in skip:
            found.setdefault(a.id, a)
        if len(found) == n:
            break
    return list(found.values())


def metrics(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Prediction errors vs measurements: n, within_5pct, within_10pct (fractions), median
    and max |error| (% of measured)."""
    return fit.errors(predicted, measured)


def validate(
    table: LatencyTable,
    archs: Sequence[Arch],
    settings: dict[str, Any],
    output: str = "logits",
    progress: bool = True,
    repeat: int = 25,
) -> dict[str, Any]:
    """Predictions (first: a missing signature fails before any measuring), then whole-model
    measurements, then the first `repeat` archs again; returns `{metrics..., "repeatability":
    {...}, "rows": [...]}`."""
    if repeat < 0:
        raise UserError(f"repeat: got {repeat}; allowed: an integer >= 0")
    predicted = {
        a.id: predict(a, table, output)
        for a in tqdm(archs, desc="predicting", unit="arch", disable=not progress)
    }

    def run(models: Sequence[Arch], seed: int, desc: str) -> dict[str, dict]:
        return measure_models(
            list(models),
            table.target,
            table.threads,
            {**settings, "seed": seed},
            output,
            progress,
            desc=f"{desc} ({table.target})",
            table=table,
        )

    measured = run(archs, settings["seed"], "measuring models")
    first = list(archs[:repeat])[::-1]  # another order, after all the others
    again = run(first, settings["seed"] + 1, "measuring again") if first else {}
    rows = [
        {
            "id": a.id,
            "arch": a.to_dict(),
            "predicted_ms": round(predicted[a.id], 4),
            "measured_ms": measured[a.id]["median_ms"],
            "measured_p10_ms": measured[a.id]["p10_ms"],
            "measured_p90_ms": measured[a.id]["p90_ms"],
            "measured_raw_ms": measured[a.id].get("raw_median_ms"),
            "error_pct": round(100.0 * (predicted[a.id] / measured[a.id]["median_ms"] - 1), 3),
            **({"measured_again_ms": again[a.id]["median_ms"]} if a.id in again else {}),
        }
        for a in archs
    ]
    result = metrics([r["predicted_ms"] for r in rows], [r["measured_ms"] for r in rows])
    twice = [r for r in rows if "measured_again_ms" in r]
    repeatability = (
        metrics([r["measured_again_ms"] for r in twice], [r["measured_ms"] for r in twice])
        if twice
        else {"n": 0}
    )
    return {
        **result,
        "repeatability": repeatability,
        "target": table.target,
        "threads": table.threads,
        "rows": rows,
    }


def scatter_plot(result: dict[str, Any], path: Path) -> Path:
    """Predicted vs measured latency, one point per arch, with the ±10 % band."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    rows = result["rows"]
    measured = [r["measured_ms"] for r in rows]
    predicted = [r["predicted_ms"] for r in rows]
    top = 1.1 * max(measured + predicted)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, top], [0, top], color="black", lw=1, label="predicted = measured")
    ax.fill_between(
        [0, top], [0, 0.9 * top], [0, 1.1 * top], color="tab:green", alpha=0.15, label="±10 %"
    )
    encoder = {id(r): Arch.from_dict(r["arch"]).encoder.name for r in rows}
    for enc in sorted(set(encoder.values())):
        pts = [(r["measured_ms"], r["predicted_ms"]) for r in rows if encoder[id(r)] == enc]
        ax.scatter(*zip(*pts, strict=False), s=14, label=enc)
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="measured latency (ms)",
        ylabel="predicted latency (ms)",
        title=f"{result['target']}, {result['threads']} thread(s): "
        f"{100 * result['within_10pct']:.0f} % within ±10 %, "
        f"median |err| {result['median_abs_pct_error']:.1f} %",
    )
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8, loc="upper left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
