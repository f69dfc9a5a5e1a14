"""Latency table of seed 000's space on this CPU: LiteRT interpreter + XNNPACK, float32.

    segnas latency build --target litert-cpu --threads 1 --config experiments/latency_cpu.py
    segnas latency validate --target litert-cpu --n 100 --plot latency_validation.png
    segnas latency build --target litert-cpu --config experiments/latency_cpu.py:smoke \\
        --out /tmp/latency_smoke.json                                   # CI, ~20 s

The space is seed 000's (3 encoders x 3 decoders x 2 conv types x 3 widths) at 128², 160²,
192², 224² and 256²: 270 archs, 1455 distinct block signatures and 100 whole models for the
fit (calibration), which leaves 170 archs for `validate --n 100` to hold out; one table at
`latency_tables/litert-cpu_t1.json`. Measured figures (build time, held-out error,
repeatability) are in experiments/benchmarks/results/latency_accuracy.json and the README.
Resolutions multiply the work: each extra size adds ~290 signatures, larger sizes are slower
to time, and `full` (40,320 archs) costs hours of tracing alone: build tables for the slice of
the space a search actually uses. A re-run resumes (it re-traces every arch, ~0.5 s each, then
measures only missing signatures).

Expected (`validate --n 100`, 1 thread): >= 95 % of held-out archs within ±10 %.

Fields: `space` (a name of nas.space.presets.SPACES or a Space dict), `resolutions` (square sizes
replacing the space's; empty keeps them), `output` ("logits", or "labels" to add the argmax
block), `measure` (rounds, warmup, chunk, seed: see nas/latency/measure.py),
`calibration` (n whole models, seed).
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The latency-table config: seed 000's space at 128-256 px; `smoke`: one tiny family."""
    smoke = parse_arg(arg, ARGS, "latency_cpu") == "smoke"
    if smoke:
        # One small model family at 64²: a few dozen signatures, seconds to measure.
        space: str | dict = dict(
            encoder=dict(name=("mobilenet_v3_small",)),
            decoder=dict(name=("unet",), kind=("bilinear", "mlp")),
            conv=dict(type=("depthwise",)),
            resolution=((64, 64),),
            num_classes=2,
        )
    else:
        space = "seed000"
    return ml_collections.ConfigDict(
        dict(
            space=space,
            resolutions=() if smoke else (128, 160, 192, 224, 256),
            output="logits",
            measure=dict(rounds=5 if smoke else 40, warmup=2 if smoke else 5, chunk=16, seed=0),
            calibration=dict(n=2 if smoke else 100, seed=1),
        )
    )
