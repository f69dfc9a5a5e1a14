"""Latency table of seed 001's space on this CPU: LiteRT interpreter + XNNPACK, float32.

    segnas latency build --target litert-cpu --config experiments/seed001/latency.py \\
        --out latency_tables/seed001_litert-cpu_t1.json
    segnas latency validate --table latency_tables/seed001_litert-cpu_t1.json --n 50
    .venv/bin/python experiments/benchmarks/latency_accuracy.py --n 50 \\
        --config experiments/seed001/latency.py --table /tmp/seed001.json \\
        --name latency_accuracy_seed001                     # build, validate, write the JSON

The space is `seed001` (nas/space/presets.py: ShuffleNetV2-seg or MobileNetV2 at widths 0.5-2.0,
DeepLabV3 basic or DPC, output stride 8 / 16 / 32, 19 classes) at 128², 192² and 256² instead
of its 513² and 769² crops: 144 archs, 60 of them timed whole for the fit (calibration), which
leaves 84 for `validate --n 50` to hold out. Timing at the crop sizes works the same and costs
~10x more (a MobileNetV2 2.0 + DPC model at output stride 8 and 769² runs for seconds per
call). Measured figures: experiments/benchmarks/results/latency_accuracy_seed001.json.

`smoke`: ShuffleNetV2-seg 0.5 + the basic head at 64², output stride 32: a handful of
signatures, seconds to measure (the CI test of this config).
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Seed 001's latency-table config (128-256 px); `smoke`: one tiny model at 64²."""
    smoke = parse_arg(arg, ARGS, "seed001_latency") == "smoke"
    if smoke:
        space: str | dict = dict(
            encoder=dict(name=("shufflenet_v2_seg",), width=(0.5,)),
            decoder=dict(name=("deeplabv3",), cell=("basic",)),
            resolution=((64, 64),),
            output_stride=(32,),
            num_classes=19,
        )
    else:
        space = "seed001"
    return ml_collections.ConfigDict(
        dict(
            space=space,
            resolutions=() if smoke else (128, 192, 256),
            output="logits",
            measure=dict(rounds=5 if smoke else 40, warmup=2 if smoke else 5, chunk=16, seed=0),
            calibration=dict(n=2 if smoke else 60, seed=1),
        )
    )
