"""Seed 001, Table 2: GFLOPs at 640x360 and Cityscapes validation mIoU of the four models.

    segnas search --config experiments/seed001/table2.py --workdir runs/seed001_table2   # GPU/TPU
    segnas table --config experiments/seed001/table2.py --workdir runs/seed001_table2
    segnas search --config experiments/seed001/table2.py:smoke --workdir /tmp/t2_smoke  # CPU
    segnas table --config experiments/seed001/table2.py:smoke --workdir /tmp/t2_smoke
    segnas search --config experiments/seed001/table2.py:toy --workdir runs/t2_toy      # a GPU
    segnas table --config experiments/seed001/table2.py:toy --workdir runs/t2_toy

The search is a `grid` over encoder {shufflenet_v2_seg, mobilenet_v2} x DeepLabV3 cell {basic,
dpc} at output stride 16, width 1.0: exactly the four `deeplabv3_*` presets, which are the
table's four built rows (matched to the sweep's trials by arch id). SkipNet-ShuffleNet and ENet
are other papers' models segnas does not build: "paper only (not built)".

Columns (`segnas table`):
- GFLOPs -> 2 x MACs of the deployed model's convs and dense layers (`nas.cost`), counted at
  the paper's 640x360 input (the column's `resolution` [360, 640]: the row's arch at that size,
  a 23 x 40 feature map at output stride 16 under TF "SAME" padding), while the row itself
  stays the trained arch at its own size. Bias, BatchNorm, activations and the bilinear
  upsample are not counted; the paper's counter evidently adds some of them: segnas's 2.161 /
  3.029 / 4.654 / 5.520 (ShuffleNetV2 basic / DPC, MobileNetV2 basic / DPC) are 0.7-0.9 % below
  its 2.18 / 3.05 / 4.69 / 5.56;
- mIOU (%) -> val/miou x 100 of the sweep in --workdir ("not run: ..." before it has run).
The paper prints n/a for ENet's and MobileNetV2 + DPC's mIoU: those cells show "–".

Default mode (GPU / TPU): Cityscapes fine (tfds `cityscapes/semantic_segmentation`, prepared
by hand once: `data.pipeline.prepare`; 19 classes), the paper's recipe where segnas has it:
Adam (0.9, 0.999, 1e-8), weight decay 4e-5 (L2 on the kernels), poly decay with power 0.9,
batch 16, random scale 0.5-2.0 in steps of 0.25, random 769x769 crop (padding: grey 128, ~0
after normalising; labels ignored), left-right flip, inputs x * 2 / 255 - 1. Where segnas
differs from the paper:
- the paper trains ImageNet -> MS-COCO (9 classes, 60K steps, lr 1e-3) -> Cityscapes coarse
  (60K steps) -> Cityscapes fine (120K steps, lr 1e-4, slow start at 1e-5 for 186 steps).
  segnas has no COCO-subset or coarse-label builder (`..._extra` pairs coarse labels with the
  fine images, data/cityscapes.py), so the sweep trains on the fine set only: the fine stage's
  120K steps and slow start, at the pre-training stages' lr 1e-3 (the paper's lower 1e-4 is
  for weights already trained on COCO and coarse labels). The models start from random
  weights: one `train.init_from` file cannot serve both encoders of one sweep, and
  torchvision's ShuffleNetV2 files do not fit the segmentation variant (nas/weights; a
  single MobileNetV2 run can start from torchvision's). Expect mIoU well below 67.7 / 71.3;
- evaluation: segnas runs a model at its arch's input size, so each 1024x2048 validation image
  is scored on its central 769x769 crop (the training geometry, at scale 1) instead of the
  whole image the paper evaluates; resizing the full image to 769x769 instead would shrink it
  2.7x across but 1.3x down, a 2:1 distortion the model never sees in training.
The paper's batch, steps and learning rates are stated; what it leaves out: the BatchNorm
momentum (segnas: its models' 0.99), the eval-time crop (above), the loss (segnas: softmax
cross-entropy, ignoring void pixels, DeepLab's).

`:toy` (a lent GPU, a few minutes): the same recipe on toy_scenes `images` (5 classes) generated
at 256x256, crop 256, 300 steps (batch 16, plain poly from 1e-3, BatchNorm momentum 0.9 so that
the short run's running statistics keep up); override the length with
`--config.train.steps=500`. A separate mode rather than `--config.data...` overrides because the
trained archs (and so the table rows) carry the data's class count and the crop size.
`:smoke` runs the same four rows on toy_scenes at 64x64 for 2 steps (batch 2) on a CPU, for CI.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments import common
from experiments.common import data_section, parse_arg, train_section, wandb_section
from nas.space.presets import preset

ARGS = ("", "smoke", "toy")
# (row as printed, preset ("" = not built), paper: GFLOPs, mIOU (%); None = the paper's n/a)
PAPER_ROWS: tuple[tuple[str, str, float, float | None], ...] = (
    ("SkipNet-ShuffleNet", "", 2.0, 55.5),
    ("ENet", "", 3.83, None),
    ("MobileNet V2 + Basic", "deeplabv3_mobilenet_v2_basic", 4.69, 70.7),
    ("MobileNet V2 + DPC", "deeplabv3_mobilenet_v2_dpc", 5.56, None),
    ("ShuffleNet V2 + Basic (Ours)", "deeplabv3_shufflenet_v2_basic", 2.18, 67.7),
    ("ShuffleNet V2 + DPC (Ours)", "deeplabv3_shufflenet_v2_dpc", 3.05, 71.3),
)
GFLOPS_AT = (360, 640)  # the paper's 640 x 360 x 3 image, as (height, width)
# mode -> dataset, its class count, training crop (= the archs' input side), data size, steps
MODES: dict[str, dict[str, Any]] = {
    "": dict(data="cityscapes/semantic_segmentation", classes=19, side=769, steps=120_000),
    "toy": dict(data="toy_scenes/images", classes=5, side=256, steps=300),
    "smoke": dict(data="toy_scenes/images", classes=5, side=64, steps=2),
}


def row_arch(preset_name: str, side: int, classes: int) -> dict[str, Any]:
    """The preset as trained in this mode: at side x side, with the data's class count."""
    return preset(preset_name).replace(resolution=(side, side), num_classes=classes).to_dict()


def table_section(mode: str) -> ml_collections.ConfigDict:
    """The `table` section: Table 2's six rows (four built at this mode's size and classes)."""
    m = MODES[mode]
    rows = []
    for name, preset_name, gflops, miou in PAPER_ROWS:
        arch = row_arch(preset_name, m["side"], m["classes"]) if preset_name else ""
        paper = {"gflops": gflops, **({} if miou is None else {"miou": miou})}
        rows.append(dict(group="", name=name, arch=arch, paper=paper))
    tag = {"": "", "toy": " [toy: toy_scenes, 256 px]", "smoke": " [smoke: toy_scenes, 64 px]"}
    return ml_collections.ConfigDict(
        dict(
            name="seed001_table2" + (f"_{mode}" if mode else ""),
            title="Seed 001, Table 2: Cityscapes validation set performance. GFLOPs is measured "
            "on image resolution of 640 x 360 x 3." + tag[mode],
            workdir={"": "runs/seed001_table2", "toy": "runs/t2_toy", "smoke": "/tmp/t2_smoke"}[
                mode
            ],
            rows=tuple(rows),
            columns=(
                dict(
                    key="gflops",
                    kind="structural",
                    title="GFLOPs",
                    metric="flops",
                    scale=1e-9,
                    digits=3,
                    resolution=GFLOPS_AT,
                ),
                dict(
                    key="miou",
                    kind="accuracy",
                    title="mIOU (%)",
                    metric="val/miou",
                    scale=100.0,
                    digits=1,
                    command="segnas search --config {config} --workdir {workdir}",
                ),
            ),
            latency=dict(mode="skip"),
            notes=(
                "GFLOPs: 2 x conv and dense MACs (TF SAME output sizes); the paper's counter adds "
                "~0.8 %. –: the paper prints n/a.",
                "mIOU: "
                + (
                    "Cityscapes fine only, from random weights, scored on 769x769 centre crops "
                    "(the paper: COCO + coarse pre-training, whole images); see the config."
                    if not mode
                    else "toy_scenes images (5 classes), not Cityscapes: a pipeline check."
                ),
            ),
        )
    )


def search_section(mode: str) -> ml_collections.ConfigDict:
    """The sweep: a grid that trains exactly the four built rows."""
    m = MODES[mode]
    space = dict(
        encoder=dict(name=("shufflenet_v2_seg", "mobilenet_v2"), width=(1.0,)),
        decoder=dict(name=("deeplabv3",), cell=("basic", "dpc")),
        resolution=((m["side"], m["side"]),),
        output_stride=(16,),
        num_classes=m["classes"],
    )
    # a grid over every point (num_trials 0: the 4 models); the unsearched dimensions come
    # from the baseline, the ShuffleNetV2 + basic row
    return common.search_section(
        "seed001_table2",
        "grid",
        space,
        baseline=row_arch("deeplabv3_shufflenet_v2_basic", m["side"], m["classes"]),
        objectives=("val/miou", "macs", "bytes"),
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 2 sweep and table: Cityscapes (default), `toy` (toy_scenes, 256 px, a GPU) or
    `smoke` (toy_scenes, 64 px, 2 steps, CPU)."""
    mode = parse_arg(arg, ARGS, "seed001_table2")
    m, smoke = MODES[mode], mode == "smoke"
    side = m["side"]
    c = ml_collections.ConfigDict()
    if mode:
        sizes = (16, 4, 4) if smoke else (2000, 200, 200)
        c.data = data_section(
            m["data"],
            height=side,
            width=side,
            num_classes=m["classes"],
            **dict(zip(("train_size", "validation_size", "test_size"), sizes, strict=True)),
        )
        c.data.preprocess_eval = "normalize(-1, 1)"  # the whole toy scene, at the crop size
    else:
        c.data = data_section(m["data"])
        c.data.preprocess_eval = f"center_crop({side}, {side}) | normalize(-1, 1)"
    # DeepLab's: scale by 0.5, 0.75, ..., 2.0, crop (pad with its mean grey 127.5, stored as
    # uint8 128, ~0 once normalised), flip, inputs to [-1, 1]
    c.data.preprocess_train = (
        f"random_scale(0.5, 2.0, 0.25) | random_crop({side}, {side}, 127.5) | random_flip | "
        "normalize(-1, 1)"
    )
    paper = dict(schedule="slow_start", warmup_steps=186, warmup_lr=1e-5)
    c.train = train_section(
        smoke,
        steps=m["steps"],
        batch_size=2 if smoke else 16,
        optimizer="adam",
        lr=1e-3,
        # the short runs: plain poly from lr (a 186-step slow start would be most of them)
        **(paper if not mode else dict(schedule="poly", warmup_steps=0)),
        end_lr=0.0,
        power=0.9,
        weight_decay=4e-5,
        **({"bn_momentum": 0.9} if mode == "toy" else {}),
        eval_every={"": 5000, "toy": 100, "smoke": 2}[mode],
        checkpoint_every={"": 1000, "toy": 100, "smoke": 2}[mode],
        keep_checkpoints=2,
        log_every={"": 100, "toy": 20, "smoke": 1}[mode],
        progress=not smoke,
    )
    c.wandb = wandb_section("seed001_table2", smoke)
    c.search = search_section(mode)
    c.table = table_section(mode)
    return c
