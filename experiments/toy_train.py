"""Train one small segmenter on toy_scenes: the first run of segnas, CPU friendly.

    segnas train --config experiments/toy_train.py --workdir runs/toy
    segnas train --config experiments/toy_train.py:smoke --workdir /tmp/toy_smoke  # seconds

Measured (2-core x86-64 CPU, this config, W&B offline): val/miou 0.618 at step 900 and 0.655
at the end (step 1100), 8 min 48 s for the whole command (35 images/s at batch 16);
experiments/benchmarks/train_throughput.py prints the same figures for any config. Rerunning
the same command resumes from the last checkpoint.

Model: seed 000's baseline (MobileNetV3-Large encoder, bilinear U-Net decoder, depthwise
convs) at 64 px. Two choices make it learn within minutes: BatchNorm running statistics with
momentum 0.9 (the models' 0.99 lags so short a run: val/miou 0.15 instead of 0.34 at step 300),
and a high Adam learning rate (after 4 minutes: 0.48 at 6e-3 vs 0.43 at 3e-3; this config
uses 8e-3).

Sections: `arch` (Arch fields; `--config.arch.width=0.75` etc.; a preset name or an arch
JSON path also work), `data` (`data.pipeline.default_data_config`), `train`, `wandb`.
Derived values (schedule lengths) are computed by the trainer from `train.steps`.
"""

from __future__ import annotations

import ml_collections

from data.pipeline import default_data_config
from nas.space.arch import Arch

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The toy training config (MobileNetV3-Large, 64 px, 1100 steps); `smoke`: 8 steps, 32 px."""
    arg = arg or ""
    if arg not in ARGS:
        raise ValueError(f"toy_train config arg: got {arg!r}; allowed: none or 'smoke'")
    smoke = arg == "smoke"
    c = ml_collections.ConfigDict()

    res = 32 if smoke else 64
    arch = Arch(
        encoder="mobilenet_v3_small" if smoke else "mobilenet_v3_large",
        decoder="bilinear",
        conv_type="depthwise",
        width=1.0,
        resolution=(res, res),
        num_classes=5,
    )
    c.arch = ml_collections.ConfigDict({**arch.to_dict(), "resolution": arch.resolution})

    c.data = default_data_config("toy_scenes/images")
    if smoke:  # a private, tiny variant: generated in about a second
        c.data.builder_kwargs.update(
            height=res, width=res, train_size=64, validation_size=16, test_size=16
        )

    c.train = ml_collections.ConfigDict(
        dict(
            steps=8 if smoke else 1100,
            batch_size=4 if smoke else 16,
            eval_batch_size=0,  # 0: same as batch_size
            optimizer="adam",  # adam | adamw | sgd
            lr=3e-3 if smoke else 8e-3,
            schedule="warmup_poly",  # constant | poly | warmup_poly | cosine | slow_start
            warmup_steps=2 if smoke else 50,
            warmup_lr=1e-5,  # warmup start / slow-start value
            end_lr=0.0,
            power=0.9,
            momentum=0.9,  # sgd only
            weight_decay=4e-5,
            grad_clip_norm=0.0,  # 0: no clipping
            ema=0.0,  # 0: off; seed 002 uses 0.999 over 80k steps
            # BN running-statistics momentum; the models' own 0.99 lags a short run (nas.train)
            bn_momentum=0.9,
            loss=ml_collections.ConfigDict(
                dict(
                    ce=1.0,
                    lovasz=0.0,
                    jaccard=0.0,
                    dice=0.0,
                    bce=0.0,
                    class_weights=(),  # empty: none; else one weight per class
                    aux_weight=0.0,  # loss on the decoder's coarse mask
                )
            ),
            eval_every=4 if smoke else 100,
            checkpoint_every=2 if smoke else 200,
            keep_checkpoints=3,
            log_every=1 if smoke else 20,
            max_minutes=0.0,  # 0: no time limit
            seed=0,
            distributed=False,  # jax.distributed.initialize (multi-host)
            progress=True,  # tqdm progress bar
        )
    )

    c.wandb = ml_collections.ConfigDict(
        dict(
            mode="disabled" if smoke else "offline",  # offline | online | disabled
            project="segnas",
            entity="",
            group="toy_train",
            name="",
            tags=(),
        )
    )
    return c
