"""Latency table of seed 002's space on this CPU: LiteRT interpreter + XNNPACK, float32.

    segnas latency build --target litert-cpu --config experiments/seed002/latency.py \\
        --out latency_tables/seed002_litert-cpu_t1.json
    segnas latency validate --table latency_tables/seed002_litert-cpu_t1.json --n 50
    .venv/bin/python experiments/benchmarks/latency_accuracy.py --n 50 \\
        --config experiments/seed002/latency.py --table /tmp/seed002.json \\
        --name latency_accuracy_seed002                     # build, validate, write the JSON

The space is `seed002` (nas/space/presets.py: StrideFormer tiny or base at widths 0.75 / 1.0,
AAM or AAMSx8 with Table 4's two switches, 150 classes) at 128², 192² and 256² instead of its
384² and 512² crops: 96 archs, 40 of them timed whole for the fit (calibration), which leaves
56 for `validate --n 50` to hold out. The table times the exported labels model with the Valid
Interpolate Module keeping K = 16 classes (`labels_vim16`), the model PP-MobileSeg deploys at
150 classes: its blocks include the attention blocks, the AAM's convs and fusion, the head and
the VIM gather + upsample + argmax. Measured figures:
experiments/benchmarks/results/latency_accuracy_seed002.json.

`smoke`: StrideFormer-Tiny at width 0.75 + AAM at 64², a handful of signatures, seconds to
measure (the CI test of this config).
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg

ARGS = ("", "smoke")
OUTPUT = "labels_vim16"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Seed 002's latency-table config (128-256 px); `smoke`: one tiny model at 64²."""
    smoke = parse_arg(arg, ARGS, "seed002_latency") == "smoke"
    if smoke:
        space: str | dict = dict(
            encoder=dict(name=("strideformer_tiny",), width=(0.75,)),
            decoder=dict(name=("aam",), variant=("aam",)),
            resolution=((64, 64),),
            output_stride=(32,),
            num_classes=150,
        )
    else:
        space = "seed002"
    return ml_collections.ConfigDict(
        dict(
            space=space,
            resolutions=() if smoke else (128, 192, 256),
            output=OUTPUT,
            measure=dict(rounds=5 if smoke else 40, warmup=2 if smoke else 5, chunk=16, seed=0),
            calibration=dict(n=2 if smoke else 40, seed=1),
        )
    )
