"""A quickstart-sized search over seed 000's, seed 001's and seed 002's families together.

    segnas search --config experiments/seed002/joint_search.py --workdir runs/joint3
    segnas search --config experiments/seed002/joint_search.py:smoke --workdir /tmp/js3  # CI

The quickstart (experiments/quickstart.py: toy_scenes `binary` at 96 px, 12 candidates of 100
steps of 8 images, two workers, NSGA-II) over one joint space: the encoder is MobileNetV3-Small
(seed 000), ShuffleNetV2's segmentation variant (seed 001) or StrideFormer-Tiny (seed 002), at
widths 0.5 and 1.0; the head is seed 000's U-Net decoder (bilinear), seed 001's DeepLabV3
(basic cell) or seed 002's AAM; output stride 16 or 32 (the AAM works at 32 only: a draw of 16
with it is the same arch at 32); 64 or 96 px. Every encoder meets every head. Objectives:
validation mIoU and MACs, as in experiments/seed001/joint_search.py.

`smoke`: a grid of two candidates of 2 steps at 32 px, StrideFormer-Tiny 0.5 and
ShuffleNetV2-seg 0.5, both with the AAM (a seed 002 head on a seed 001 encoder), one worker.
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg
from experiments.quickstart import get_config as quickstart_config

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The joint seed 000 + 001 + 002 search (NSGA-II, 12 candidates); `smoke`: 2 tiny ones."""
    smoke = parse_arg(arg, ARGS, "seed002_joint_search") == "smoke"
    c = quickstart_config("smoke" if smoke else None)
    s = c.search
    s.study_name = "seed002_joint"
    s.space = dict(
        encoder=dict(
            name=("strideformer_tiny", "shufflenet_v2_seg")
            if smoke
            else ("mobilenet_v3_small", "shufflenet_v2_seg", "strideformer_tiny"),
            width=(0.5,) if smoke else (0.5, 1.0),
        ),
        decoder=dict(
            name=("aam",) if smoke else ("unet", "deeplabv3", "aam"),
            variant=("aam",),
            **({} if smoke else {"kind": ("bilinear",), "cell": ("basic",)}),
        ),
        conv=dict(type=("depthwise",)),
        resolution=((32, 32),) if smoke else ((64, 64), (96, 96)),
        output_stride=(32,) if smoke else (16, 32),
        num_classes=s.space["num_classes"],
    )
    s.strategy = "grid" if smoke else "nsga2"
    s.num_trials = 2 if smoke else 12
    s.objectives = ("val/miou", "macs")
    s.latency_tables = ml_collections.ConfigDict({})
    s.build_missing_tables = False
    c.wandb.group = "seed002_joint"
    return c
