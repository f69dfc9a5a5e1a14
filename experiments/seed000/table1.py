"""Seed 000, Table 1: the one-at-a-time ablation around the paper's final edge model.

    segnas search --config experiments/seed000_table1.py --workdir runs/seed000_table1
    segnas search --config experiments/seed000_table1.py:smoke --workdir /tmp/t1_smoke  # CPU

The `ablation` strategy trains the baseline, then varies one dimension at a time around it,
which is the design of the paper's Table 1 (its "*" rows are the final choices, shared by all
groups, so 12 table rows are 9 distinct models):

    convolution type   depthwise | group*  (8 channels per group)
    width multiplier   1.0* | 1.5 | 2.0
    decoder            bilinear upsampling | channel attention | MLP*
    input resolution   256 | 384 | 512* | 640

around `seed000_final`: EfficientNet-Lite0 encoder, MLP decoder, group convolutions, width 1.0,
512x512, 2 classes. The summary table printed at the end is grouped like Table 1 (the baseline
marked `*` in every group). Paper columns -> segnas: Segment IOU -> `val/miou`; model size ->
`bytes` (fp32 weights); OPs -> `macs`; inference time -> `latency/<target>` once a table is
given (`--config.search.latency_tables.litert-cpu=TABLE.json` and add `latency/litert-cpu` to
`search.objectives`; the paper timed a Pixel 6 GPU / NPU: build a table on such a device with
`segnas latency export-bench` / `import`).

Data: toy_scenes `binary` (foreground vs background: the seed-000 task, whose person data are
not public), generated at 640x640 so that every resolution row trains on images scaled *down*
to its input size, as the paper does. The full run is for a GPU / TPU host (~10k steps per
model); `:smoke` runs the same 9 rows at 32-128 px for a few steps on a CPU.
"""

from __future__ import annotations

import ml_collections

from data.pipeline import default_data_config
from nas.space.encoding import space_config
from nas.space.presets import preset
from nas.space.space import Space, resolutions

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 1 ablation config around `seed000_final`; `smoke`: the same rows at 32-128 px."""
    arg = arg or ""
    if arg not in ARGS:
        raise ValueError(f"seed000_table1 config arg: got {arg!r}; allowed: none or 'smoke'")
    smoke = arg == "smoke"
    # Table 1's four resolutions; smoke keeps four steps, each divisible by the stride 32.
    sizes = (32, 64, 96, 128) if smoke else (256, 384, 512, 640)
    final = preset("seed000_final").replace(resolution=(sizes[2], sizes[2]))
    space = Space(
        encoder=(final.encoder,),
        decoder=("bilinear", "channel_attention", "mlp"),
        conv_type=("depthwise", "group"),
        group_size=(final.group_size,),
        width=(1.0, 1.5, 2.0),
        depth=(1.0,),
        resolution=resolutions(sizes),
        output_stride=(final.output_stride,),
        num_classes=2,
    )

    c = ml_collections.ConfigDict()
    c.data = default_data_config("toy_scenes/binary")
    side = 64 if smoke else sizes[-1]
    c.data.builder_kwargs.update(
        height=side,
        width=side,
        train_size=32 if smoke else 1000,
        validation_size=8 if smoke else 200,
        test_size=8 if smoke else 200,
    )
    c.train = ml_collections.ConfigDict(
        dict(
            steps=2 if smoke else 10_000,
            batch_size=2 if smoke else 32,
            eval_batch_size=0,
            optimizer="adam",
            lr=1e-3,
            schedule="warmup_poly",
            warmup_steps=1 if smoke else 500,
            warmup_lr=1e-5,
            end_lr=0.0,
            power=0.9,
            momentum=0.9,
            weight_decay=4e-5,
            grad_clip_norm=0.0,
            ema=0.0,
            # Seed 000 trains with a Jaccard (IoU) loss; cross-entropy beside it steadies the start.
            loss=dict(
                ce=1.0, lovasz=0.0, jaccard=1.0, dice=0.0, bce=0.0, class_weights=(), aux_weight=0.0
            ),
            eval_every=2 if smoke else 1000,
            checkpoint_every=2 if smoke else 1000,
            keep_checkpoints=2,
            log_every=1 if smoke else 50,
            max_minutes=0.0,
            seed=0,
            distributed=False,
            progress=not smoke,
        )
    )
    c.wandb = ml_collections.ConfigDict(
        dict(
            mode="disabled" if smoke else "offline",
            project="segnas",
            entity="",
            group="seed000_table1",
            name="",
            tags=(),
        )
    )
    c.search = ml_collections.ConfigDict(
        dict(
            study_name="seed000_table1",
            strategy="ablation",
            space=space_config(space),
            baseline=final.replace(num_classes=2).to_dict() | {"resolution": final.resolution},
            num_trials=0,  # 0: every row of the ablation (9 models)
            seed=0,
            objectives=("val/miou", "bytes", "macs"),
            latency_tables=ml_collections.ConfigDict({}),
            build_missing_tables=False,
            max_latency_ms=ml_collections.ConfigDict({}),
            max_params=ml_collections.FieldReference(None, field_type=float),
            max_bytes=ml_collections.FieldReference(None, field_type=float),
            max_macs=ml_collections.FieldReference(None, field_type=float),
            train_infeasible=False,
            population_size=8,
            startup_trials=10,
            prune=dict(enabled=False, min_trials=3, warmup_steps=0),
            reference_point=ml_collections.ConfigDict({}),
            heartbeat_interval=60,
            grace_period=300,
            max_retry=2,
            evaluator="nas.train.loop:train_and_evaluate",
            winners=dict(max_count=0, quantize="none", output="logits"),
        )
    )
    return c
