"""Seed 000, Table 1: the one-at-a-time ablation around the paper's final edge model.

    segnas search --config experiments/seed000/table1.py --workdir runs/seed000_table1
    segnas table --config experiments/seed000/table1.py --workdir runs/seed000_table1
    segnas search --config experiments/seed000/table1.py:smoke --workdir /tmp/t1_smoke  # CPU
    segnas table --config experiments/seed000/table1.py:smoke --workdir /tmp/t1_smoke

The `ablation` strategy trains the baseline, then varies one dimension at a time around it,
which is the design of the paper's Table 1 (its "*" rows are the final choices, shared by all
groups, so 12 table rows are 9 distinct models):

    convolution type   depthwise | group*  (8 channels per group)
    width multiplier   1.0* | 1.5 | 2.0
    decoder            bilinear upsampling | channel attention | MLP*
    input resolution   256 | 384 | 512* | 640

around `seed000_final` (FINAL below, the preset as a flat dict): EfficientNet-Lite0 encoder,
MLP decoder, group convolutions, width 1.0, 512x512, 2 classes. The search's summary table is
grouped like Table 1 (the baseline marked `*` in every group). Latency in the search: give a
table (`--config.search.latency_tables.litert-cpu=TABLE.json` and add `latency/litert-cpu` to
`search.objectives`; the paper timed a Pixel 6 GPU / NPU: build a table on such a device with
`segnas latency export-bench` / `import`).

`segnas table` prints the paper's columns beside segnas's (the `table` section):
- Inf Time (ms) -> latency, measured here (LiteRT CPU, XNNPACK, 1 thread, the 9 models side by
  side, ~1 min on 2 cores), as a ratio to the 512x512* row: the paper's device is not stated
  (its final pipeline runs on a Pixel 6), so only ratios compare;
- Model Size (MB) -> fp16 weights (params x 2 bytes / 10^6) of the deployed model (without the
  coarse auxiliary head only training reads, as exported): seed000_final's 8.74 MB matches
  the paper's 8.7 MB of the decoder and resolution blocks (fp32 would be 17.5 MB);
- OPs (10^9) -> 2 x MACs of the deployed model (conv + dense; the paper's convention is not
  stated: its 7.6 G for the final model is ~17 % above segnas's 6.49 G);
- Segment IOU (%) -> val/miou x 100 of the search in --workdir (toy_scenes `binary`, two
  classes, not the paper's proprietary person data); "not run: ..." before the sweep;
- Pose IOU (%) -> the paper's only (segnas has no pose data).
The paper's blocks disagree with each other (the 1.0* width row: 9.4 MB / 5.3 G OPs; the MLP* and
512* rows: 8.7 MB / 7.6 G), evidently each measured around its own baseline; segnas's four
starred rows are one model.

Data: toy_scenes `binary` (foreground vs background: the seed-000 task, whose person data are
not public), generated at 640x640 so that every resolution row trains on images scaled *down*
to its input size, as the paper does. The full run is for a GPU / TPU host (~10k steps per
model); `:smoke` runs the same 9 rows at 32-128 px for a few steps on a CPU (its table: the
same rows at those sizes).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments.common import (
    data_section,
    loss_section,
    parse_arg,
    search_section,
    train_section,
    wandb_section,
)
from nas.space.arch import Arch
from nas.space.presets import preset

ARGS = ("", "smoke")

# The preset seed000_final as its arch JSON (schema 2).
FINAL: dict[str, Any] = preset("seed000_final").to_dict()

# (group, row as printed, change to FINAL as {path: value}, paper values: Inf Time (ms), Model
# Size (MB), OPs (10^9), Segment IOU (%), Pose IOU (%)). A resolution is an index into the sizes.
PAPER_ROWS: tuple[tuple[str, str, dict[str, Any], tuple[float, ...]], ...] = (
    (
        "Convolution Type",
        "Depthwise Conv",
        {"conv.type": "depthwise"},
        (4.7, 1.7, 1.5, 97.19, 89.60),
    ),
    ("Convolution Type", "Group Conv*", {}, (4.7, 7.2, 4.8, 97.41, 90.20)),
    ("Width Multiplier", "1.0*", {}, (5.7, 9.4, 5.3, 97.50, 91.40)),
    ("Width Multiplier", "1.5", {"encoder.width": 1.5}, (8.2, 21.0, 12.1, 97.89, 92.37)),
    ("Width Multiplier", "2.0", {"encoder.width": 2.0}, (11.4, 37.0, 20.6, 97.96, 92.63)),
    (
        "Decoder Type",
        "Bilinear Upsampling",
        {"decoder.kind": "bilinear"},
        (6.5, 8.7, 7.4, 97.65, 90.65),
    ),
    (
        "Decoder Type",
        "Channel Attention",
        {"decoder.kind": "channel_attention"},
        (8.2, 8.7, 7.5, 97.75, 91.81),
    ),
    ("Decoder Type", "Multilayer Perceptron*", {}, (6.9, 8.7, 7.6, 97.81, 91.80)),
    ("Image Resolution", "256x256", {"resolution": 0}, (1.6, 8.7, 1.9, 96.94, 87.23)),
    ("Image Resolution", "384x384", {"resolution": 1}, (3.1, 8.7, 4.3, 97.51, 90.10)),
    ("Image Resolution", "512x512*", {}, (6.9, 8.7, 7.6, 97.79, 91.80)),
    ("Image Resolution", "640x640", {"resolution": 3}, (9.5, 8.7, 12.0, 97.98, 92.94)),
)
COLUMN_KEYS = ("latency", "size", "ops", "segment_iou", "pose_iou")


def table_section(sizes: tuple[int, ...], smoke: bool) -> ml_collections.ConfigDict:
    """The `table` section: Table 1's rows as FINAL variants at `sizes` (the four resolutions,
    the third the baseline's) and its columns (see the module docstring)."""
    rows = []
    for group, name, change, paper in PAPER_ROWS:
        side = sizes[change.get("resolution", 2)]
        paths = {k: v for k, v in change.items() if k != "resolution"}
        arch = Arch.from_dict(FINAL).with_values({**paths, "resolution": (side, side)}).to_dict()
        rows.append(
            dict(
                group=group, name=name, arch=arch, paper=dict(zip(COLUMN_KEYS, paper, strict=True))
            )
        )
    return ml_collections.ConfigDict(
        dict(
            name="seed000_table1",
            title="Seed 000, Table 1: Ablation study over edge segmentation model design "
            "parameters ('*' = final choice)" + (" [smoke: 32-128 px]" if smoke else ""),
            workdir="/tmp/t1_smoke" if smoke else "runs/seed000_table1",
            rows=tuple(rows),
            columns=(
                dict(key="latency", kind="latency", title="Inf Time (ms)", reference="512x512*"),
                dict(
                    key="size",
                    kind="structural",
                    title="Model Size (MB)",
                    metric="bytes_fp16",
                    scale=1e-6,
                    digits=2,
                ),
                dict(key="ops", kind="structural", title="OPs (10^9)", metric="flops", scale=1e-9),
                dict(
                    key="segment_iou",
                    kind="accuracy",
                    title="Segment IOU (%)",
                    metric="val/miou",
                    scale=100.0,
                    digits=2,
                    command="segnas search --config {config} --workdir {workdir}",
                ),
                dict(
                    key="pose_iou",
                    kind="paper",
                    title="Pose IOU (%)",
                    reason="pose data are proprietary; segnas trains no pose task",
                ),
            ),
            latency=dict(
                mode="measure",
                target="litert-cpu",
                threads=1,
                rounds=3 if smoke else 10,
                warmup=1 if smoke else 2,
                seed=0,
                table="",
            ),
            notes=(
                "Model Size: fp16 weights (2 bytes per param); OPs: 2 x conv and dense MACs.",
                "Segment IOU: segnas's val/miou on toy_scenes binary (2 classes), not the paper's "
                "person data; the paper's blocks were measured around different baselines.",
            ),
        )
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 1 ablation config around `seed000_final`; `smoke`: the same rows at 32-128 px."""
    smoke = parse_arg(arg, ARGS, "seed000_table1") == "smoke"
    # Table 1's four resolutions; smoke keeps four steps, each divisible by the stride 32.
    sizes = (32, 64, 96, 128) if smoke else (256, 384, 512, 640)
    # The search space: one tuple of values per dimension path (nas/space/space.py).
    space = dict(
        encoder=dict(name=(FINAL["encoder"]["name"],), width=(1.0, 1.5, 2.0)),
        decoder=dict(name=("unet",), kind=("bilinear", "channel_attention", "mlp")),
        conv=dict(type=("depthwise", "group"), group_size=(FINAL["conv"]["group_size"],)),
        resolution=tuple((s, s) for s in sizes),
        output_stride=(FINAL["output_stride"],),
        num_classes=2,
    )

    c = ml_collections.ConfigDict()
    side = sizes[-1]  # data at least as large as the largest resolution searched
    c.data = data_section(
        "toy_scenes/binary",
        height=side,
        width=side,
        train_size=32 if smoke else 1000,
        validation_size=8 if smoke else 200,
        test_size=8 if smoke else 200,
    )
    c.train = train_section(
        smoke,
        steps=2 if smoke else 10_000,
        batch_size=2 if smoke else 32,
        lr=1e-3,
        warmup_steps=1 if smoke else 500,
        # Seed 000 trains with a Jaccard (IoU) loss; cross-entropy beside it steadies the start.
        loss=loss_section(jaccard=1.0),
        eval_every=2 if smoke else 1000,
        # Seed 000's protocol (nas.train.steps): each resolution row is scored against the
        # ground truth shrunk to its own output size; the default, label, would score every
        # row on the data's 640x640 masks.
        eval_protocol="output",
        checkpoint_every=2 if smoke else 1000,
        keep_checkpoints=2,
        log_every=1 if smoke else 50,
        progress=not smoke,
    )
    c.wandb = wandb_section("seed000_table1", smoke)
    # every row of the ablation (9 models) around the baseline
    c.search = search_section(
        "seed000_table1", "ablation", space, baseline={**FINAL, "resolution": (sizes[2], sizes[2])}
    )
    c.table = table_section(sizes, smoke)
    return c
