"""Seed 002, Table 2: Cityscapes validation mIoU, latency at 1024x512 (no VIM), parameters.

    segnas search --config experiments/seed002/table2.py --workdir runs/seed002_table2  # GPU/TPU
    segnas table --config experiments/seed002/table2.py --workdir runs/seed002_table2
    segnas search --config experiments/seed002/table2.py:smoke --workdir /tmp/s2t2_smoke  # CPU
    segnas table --config experiments/seed002/table2.py:smoke --workdir /tmp/s2t2_smoke

Built rows: PP-MobileSeg-Tiny and -Base at 19 classes, input 512 (height) x 1024 (width): the
presets with the head's last conv re-targeted (256 x 19 + 19 instead of 256 x 150 + 150), so
1,458,631 and 5,910,211 params (the paper reprints its ADE20K 1.44 / 5.71 M). SeaFormer-Small and
-Base: "paper only (not built)". The paper's table has no LR-ASPP row; segnas adds LR-ASPP
MobileNetV3-large (19 classes, output stride 16: 3,221,198 params) as the latency reference
of issue 15, so every latency is a ratio to it, and the paper's own comparison, Base / Tiny
(323.7 / 158.3 = 2.04), is printed below the table.

Latency: as Table 1 (LiteRT XNNPACK on this CPU, 1 thread, all rows side by side, the final
upsample + argmax included), without VIM: the paper leaves it out on Cityscapes (19 classes,
under its threshold of 30).

mIoU: the same 9-model grid as Table 1 (experiments/seed002/table1.py) at 19 classes and
512x1024, PP-MobileSeg's recipe with the Cityscapes augmentation (experiments/seed002/
__init__.py): random scale 0.125-1.5, crop 512x1024, flip, distortion 0.5. Evaluation resizes
each 1024x2048 validation image to 512x1024 and scores it there (the paper infers at that size
too). `:smoke`: toy_scenes `images` (5 classes) at 64x128, 2 steps, 3 timing rounds.
"""

from __future__ import annotations

import ml_collections

from experiments import seed002
from experiments.common import measured_latency_section, parse_arg, wandb_section

ARGS = ("", "smoke")
REFERENCE = "LR-ASPP (MobileNetV3-large-x1), segnas's reference"
# (row as printed, preset ("" = not built), paper: mIoU (%), latency (ms), params (M); None:
# the paper has no such row)
PAPER_ROWS: tuple[tuple[str, str, tuple[float, float, float] | None], ...] = (
    (REFERENCE, seed002.LRASPP, None),
    ("SeaFormer-Small", "", (70.70, 204.9, 1.61)),
    ("PP-MobileSeg-Tiny", "pp_mobileseg_tiny", (70.82, 158.3, 1.44)),
    ("SeaFormer-Base", "", (72.20, 297.3, 8.64)),
    ("PP-MobileSeg-Base", "pp_mobileseg_base", (74.14, 323.7, 5.71)),
)
KEYS = ("miou", "latency", "params")


def table_section(smoke: bool) -> ml_collections.ConfigDict:
    """The `table` section: Table 2's rows at 19 (smoke: 5) classes, and LR-ASPP's."""
    d = seed002.dataset("cityscapes", smoke)
    rows = []
    for name, preset_name, paper in PAPER_ROWS:
        rows.append(
            dict(
                group="segnas" if paper is None else "",
                name=name,
                arch=seed002.preset_arch(preset_name, d) if preset_name else "",
                paper=dict(zip(KEYS, paper, strict=True)) if paper else {},
            )
        )
    return ml_collections.ConfigDict(
        dict(
            name="seed002_table2",
            title="Seed 002, Table 2: Results on Cityscapes validation set (latency with the "
            "final ArgMax, input 1024x512, no VIM, single thread)"
            + (" [smoke: toy_scenes images, 64x128]" if smoke else ""),
            workdir="/tmp/s2t2_smoke" if smoke else "runs/seed002_table2",
            rows=tuple(rows),
            columns=seed002.columns(REFERENCE),
            latency=measured_latency_section(smoke, "labels"),
            ratios=(
                dict(
                    name="PP-MobileSeg-Base / PP-MobileSeg-Tiny",
                    column="latency",
                    numerator="PP-MobileSeg-Base",
                    denominator="PP-MobileSeg-Tiny",
                ),
            ),
            notes=(
                "The LR-ASPP row is segnas's (the paper's table has none): the latency "
                "reference, so the paper's latencies print without a ratio.",
                "Parameters: the released code's counts at 19 classes (the paper reprints "
                "its 150-class 1.44 / 5.71 M).",
                "mIoU: "
                + (
                    "toy_scenes images (5 classes), not Cityscapes: a pipeline check."
                    if smoke
                    else "Cityscapes fine, PP-MobileSeg's recipe, from random weights, scored "
                    "at 512x1024; see the config."
                ),
            ),
        )
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 2 sweep and table: Cityscapes (default, a GPU / TPU) or `smoke` (CPU)."""
    smoke = parse_arg(arg, ARGS, "seed002_table2") == "smoke"
    d = seed002.dataset("cityscapes", smoke)
    c = ml_collections.ConfigDict()
    c.data = seed002.data_config(d, smoke)
    c.train = seed002.train_config(smoke)
    c.wandb = wandb_section("seed002_table2", smoke)
    c.search = seed002.family_grid("seed002_table2", d)
    c.table = table_section(smoke)
    return c
