"""A quickstart-sized search over seed 000's and seed 001's families together, on a CPU.

    segnas search --config experiments/seed001/joint_search.py --workdir runs/joint
    segnas search --config experiments/seed001/joint_search.py:smoke --workdir /tmp/js  # CI

The quickstart (experiments/quickstart.py: toy_scenes `binary` at 96 px, 12 candidates of 100
steps of 8 images, two workers, NSGA-II) over one joint space: the encoder is MobileNetV3-Large
or -Small (seed 000), ShuffleNetV2's segmentation variant or MobileNetV2 (seed 001), at widths
0.5 and 1.0; the head is seed 000's U-Net decoder (bilinear or MLP) or seed 001's DeepLabV3
(basic or DPC cell); output stride 16 or 32; 64 or 96 px. Every family takes every output
stride and head, so any encoder meets any head. Objectives: validation mIoU and MACs (a latency
table for this space takes longer to build than the sweep; add `latency/litert-cpu` to
`search.objectives` to build one in the workdir first, as the quickstart does).

`smoke`: two candidates of 2 steps at 32 px (ShuffleNetV2-seg 0.5 and MobileNetV3-Small 0.5,
each with either head), one worker.
"""

from __future__ import annotations

import ml_collections

from experiments.common import parse_arg
from experiments.quickstart import get_config as quickstart_config

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The joint seed 000 + seed 001 search (NSGA-II, 12 candidates); `smoke`: 2 tiny ones."""
    smoke = parse_arg(arg, ARGS, "seed001_joint_search") == "smoke"
    c = quickstart_config("smoke" if smoke else None)
    s = c.search
    s.study_name = "seed001_joint"
    s.space = dict(
        encoder=dict(
            name=("mobilenet_v3_small", "shufflenet_v2_seg")
            if smoke
            else ("mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_seg", "mobilenet_v2"),
            width=(0.5,) if smoke else (0.5, 1.0),
        ),
        decoder=dict(
            name=("unet", "deeplabv3"),
            kind=("bilinear",) if smoke else ("bilinear", "mlp"),
            cell=("basic",) if smoke else ("basic", "dpc"),
        ),
        conv=dict(type=("depthwise",)),
        resolution=((32, 32),) if smoke else ((64, 64), (96, 96)),
        output_stride=(32,) if smoke else (16, 32),
        num_classes=s.space["num_classes"],
    )
    s.strategy = "random" if smoke else "nsga2"
    s.num_trials = 2 if smoke else 12
    s.objectives = ("val/miou", "macs")
    s.latency_tables = ml_collections.ConfigDict({})
    s.build_missing_tables = False
    c.wandb.group = "seed001_joint"
    return c
