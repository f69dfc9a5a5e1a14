"""Seed 001, Table 5: the four encoder x head models at 224x224, GFLOPs, size and latency.

    segnas table --config experiments/seed001/table5.py          # ~1 min on 2 cores
    segnas table --config experiments/seed001/table5.py:smoke    # 3 rounds, for CI

The paper times its models with TFLite on a OnePlus A6 CPU (Snapdragon 845): ShuffleNetV2 +
basic 50.89 ms, + DPC 64.89 ms, MobileNetV2 + basic 101.46 ms, + DPC 116.16 ms, i.e.
1 : 1.27 : 1.99 : 2.28. segnas times the same four models (the `deeplabv3_*` presets at 224x224:
output stride 16, 19 classes) with LiteRT's XNNPACK delegate on this CPU, 1 thread, all four
side by side in one run (nas/latency/measure.py), each ending in its argmax as the paper's
did; latency is printed as a ratio to ShuffleNetV2 + basic, since only ratios compare across
devices. The paper's figure also holds the preprocessing x * 2 / 255 - 1; segnas's models take
the image already normalised, and that one multiply-add over 224x224x3 values is far below
the timing noise of these models, so it is left out.

GFLOPs are 2 x MACs of the convs and dense layers at TF "SAME" output sizes (`nas.cost`): 0.462
/ 0.647 / 0.997 / 1.181, each ~1-2 % below the paper's 0.47 / 0.65 / 1.00 / 1.18 (its counter
evidently adds bias and BN operations). Size is fp32 weights (4 bytes per parameter), the
paper's convention: 4.59 / 6.02 / 8.45 / 10.02 MB against 4.6 / 6 / 8.4 / 9.9. The variance and
FPS columns are the paper's device only. `:smoke` times the same four models with 3 rounds.
"""

from __future__ import annotations

import ml_collections

from experiments.common import measured_latency_section, parse_arg, wandb_section
from nas.space.presets import preset

ARGS = ("", "smoke")
REFERENCE = "ShuffleNet V2 + Basic"
# (row as printed, preset, paper: GFLOPs, Inference (ms), Var (ms), FPS, Size (MB))
PAPER_ROWS: tuple[tuple[str, str, tuple[float, float, float, float, float]], ...] = (
    (REFERENCE, "deeplabv3_shufflenet_v2_basic", (0.47, 50.89, 0.57, 19.65, 4.6)),
    ("ShuffleNet V2 + DPC", "deeplabv3_shufflenet_v2_dpc", (0.65, 64.89, 3.53, 15.41, 6.0)),
    ("MobileNet V2 + Basic", "deeplabv3_mobilenet_v2_basic", (1.00, 101.46, 25.04, 9.86, 8.4)),
    ("MobileNet V2 + DPC", "deeplabv3_mobilenet_v2_dpc", (1.18, 116.16, 44.01, 8.61, 9.9)),
)
KEYS = ("gflops", "ms", "var", "fps", "size")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 5 config (four models at 224x224); `smoke`: the same with 3 rounds."""
    smoke = parse_arg(arg, ARGS, "seed001_table5") == "smoke"
    rows = []
    for name, preset_name, paper in PAPER_ROWS:
        arch = preset(preset_name).replace(resolution=(224, 224)).to_dict()
        group = name.split(" + ")[0]
        rows.append(
            dict(group=group, name=name, arch=arch, paper=dict(zip(KEYS, paper, strict=True)))
        )
    device = "the paper's OnePlus A6 (Snapdragon 845 CPU) only"
    c = ml_collections.ConfigDict()
    c.wandb = wandb_section("seed001_table5", smoke)
    c.table = ml_collections.ConfigDict(
        dict(
            name="seed001_table5",
            title="Seed 001, Table 5: Inference performance on OnePlus A6 with an input size "
            "of 224 x 224" + (" [smoke: 3 rounds]" if smoke else ""),
            workdir="",
            rows=tuple(rows),
            columns=(
                dict(
                    key="gflops",
                    kind="structural",
                    title="GFLOPs",
                    metric="flops",
                    scale=1e-9,
                    digits=3,
                ),
                dict(key="ms", kind="latency", title="Inference (ms)", reference=REFERENCE),
                dict(key="var", kind="paper", title="Var (ms)", reason=device),
                dict(key="fps", kind="paper", title="FPS", reason=device),
                dict(
                    key="size",
                    kind="structural",
                    title="Size (MB)",
                    metric="bytes_fp32",
                    scale=1e-6,
                    digits=2,
                ),
            ),
            latency=measured_latency_section(smoke, "labels"),
            ratios=tuple(
                dict(name=f"{n} / {REFERENCE}", column="ms", numerator=n, denominator=REFERENCE)
                for n, _, _ in PAPER_ROWS[1:]
            ),
            notes=(
                "Latency: LiteRT XNNPACK on this CPU, 1 thread, network + bilinear upsample + "
                "argmax; the paper's preprocessing multiply-add is left out (see the config).",
            ),
        )
    )
    return c
