"""Train one small segmenter on toy_scenes: the first run of segnas, CPU friendly.

    segnas train --config experiments/toy_train.py --workdir runs/toy
    segnas train --config experiments/toy_train.py:smoke --workdir /tmp/toy_smoke  # seconds

Measured (experiments/benchmarks/train_throughput.py, this config; its result, with the
machine and its load, is experiments/benchmarks/results/train_throughput.json): val/miou 0.618
at step 900 and 0.655 at the end (step 1100); on the 2-core x86-64 VM shared with other jobs
(load average 3-5) 10.9 images/s at batch 16 and 28 min in all. The script measures the same
figures for any config. Rerunning the same command resumes from the last checkpoint.

Model: seed 000's baseline (MobileNetV3-Large encoder, bilinear U-Net decoder, depthwise
convs) at 64 px. Two choices make it learn within minutes: BatchNorm running statistics with
momentum 0.9 (the models' 0.99 lags so short a run: val/miou 0.15 instead of 0.34 at step 300),
and a high Adam learning rate (after 4 minutes: 0.48 at 6e-3 vs 0.43 at 3e-3; this config
uses 8e-3).

Sections (built with experiments/common.py, whose training defaults are this config's values):
`arch` (an arch JSON object; `--config.arch.encoder.width=0.75` etc.; a preset name or an arch
JSON path also work), `data` (`data.pipeline.default_data_config`), `train`, `wandb`.
Derived values (schedule lengths) are computed by the trainer from `train.steps`.
"""

from __future__ import annotations

import ml_collections

from experiments.common import arch_section, data_section, parse_arg, train_section, wandb_section

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The toy training config (MobileNetV3-Large, 64 px, 1100 steps); `smoke`: 8 steps, 32 px."""
    smoke = parse_arg(arg, ARGS, "toy_train") == "smoke"
    c = ml_collections.ConfigDict()

    res = 32 if smoke else 64
    c.arch = arch_section(
        dict(
            encoder=dict(name="mobilenet_v3_small" if smoke else "mobilenet_v3_large"),
            decoder=dict(name="unet", kind="bilinear"),
            conv=dict(type="depthwise"),
            resolution=(res, res),
            output_stride=32,
            num_classes=5,
        )
    )
    if smoke:  # a private, tiny variant: generated in about a second
        c.data = data_section(
            "toy_scenes/images",
            height=res,
            width=res,
            train_size=64,
            validation_size=16,
            test_size=16,
        )
    else:
        c.data = data_section("toy_scenes/images")
    # The house defaults (experiments/common.py) are this config's values, plus BN running
    # statistics with momentum 0.9: the models' own 0.99 lags so short a run (nas.train).
    c.train = train_section(smoke, bn_momentum=0.9)
    c.wandb = wandb_section("toy_train", smoke)
    return c
