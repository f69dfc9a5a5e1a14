"""Seed 002, Table 1: ADE20K validation mIoU, latency with the final argmax, parameters.

    segnas search --config experiments/seed002/table1.py --workdir runs/seed002_table1  # GPU/TPU
    segnas table --config experiments/seed002/table1.py --workdir runs/seed002_table1
    segnas search --config experiments/seed002/table1.py:smoke --workdir /tmp/s2t1_smoke  # CPU
    segnas table --config experiments/seed002/table1.py:smoke --workdir /tmp/s2t1_smoke

Built rows: LR-ASPP MobileNetV3-large (`lraspp_mobilenet_v3_large` re-targeted to 150 classes
at 512x512: 3,243,468 params, the paper's 3.20 M), PP-MobileSeg-Tiny and -Base (the presets:
1,492,298 / 5,943,878, the released code's counts; the paper prints 1.44 / 5.71 M, which no
counting of that code reproduces). MobileSeg, TopFormer and SeaFormer are other papers' models:
"paper only (not built)".

Latency: the paper times PaddleLite on a Snapdragon 855 CPU, 1 thread, 512x512, the final
argmax included, and PP-MobileSeg with the Valid Interpolate Module (its Table 1 figures are
its Table 3's VIM rows). segnas converts the rows to LiteRT and times them side by side on this
CPU (XNNPACK, 1 thread: nas/tables.py), LR-ASPP ending in the full upsample + argmax, the
PP-MobileSeg rows through VIM with 16 classes kept (`labels_vim16`); two segnas-only rows time
them without VIM too. Only ratios compare across devices: printed as ratios to LR-ASPP (the
paper's: 0.29 Tiny, 0.36 Base), and Base / Tiny below (paper 265.5 / 215.3 = 1.23).

mIoU: the sweep is a grid over encoder {mobilenet_v3_large, strideformer_tiny,
strideformer_base} x decoder {lraspp, aam: variant aam | aamsx8} (the aam decoder fixes output
stride 32, LR-ASPP keeps 16): 12 grid points, 9 distinct models (LR-ASPP has no variant: a
repeat is recorded as `duplicate`, not trained; `num_trials` 9 ends the sweep once the nine
are done). The table's three rows are matched by arch id; the other six (each backbone with
each head) are in the sweep's trials.jsonl. A search space is a product, so the three rows
cannot be trained alone in one sweep. All nine train with PP-MobileSeg's recipe
(experiments/seed002/__init__.py); the paper's LR-ASPP and MobileSeg figures come from
PaddleSeg's own recipes for them.

`:smoke`: the same rows on toy_scenes `many` (33 classes) at 64x64, 2 training steps, 3
timing rounds.
"""

from __future__ import annotations

import ml_collections

from experiments import seed002
from experiments.common import measured_latency_section, parse_arg, wandb_section

ARGS = ("", "smoke")
REFERENCE = "LR-ASPP (MobileNetV3-large-x1)"
# (row as printed, preset ("" = not built), paper: mIoU (%), latency (ms), params (M))
PAPER_ROWS: tuple[tuple[str, str, tuple[float, float, float]], ...] = (
    (REFERENCE, seed002.LRASPP, (33.10, 730.9, 3.20)),
    ("MobileSeg (MobileNetV3-large-x1)", "", (33.26, 391.5, 2.85)),
    ("TopFormer-Tiny", "", (32.46, 490.3, 1.41)),
    ("SeaFormer-Tiny", "", (35.00, 459.0, 1.61)),
    ("PP-MobileSeg-Tiny", "pp_mobileseg_tiny", (36.39, 215.3, 1.44)),
    ("TopFormer-Base", "", (37.80, 480.6, 5.13)),
    ("SeaFormer-Base", "", (40.20, 465.4, 8.64)),
    ("PP-MobileSeg-Base", "pp_mobileseg_base", (41.57, 265.5, 5.71)),
)
KEYS = ("miou", "latency", "params")
NO_VIM = "segnas: without VIM"  # the group of the two segnas-only rows


def rows(smoke: bool) -> tuple[dict, ...]:
    """The paper's rows (PP-MobileSeg timed through VIM) and the two rows without VIM."""
    d = seed002.dataset("ade20k", smoke)
    out = []
    for name, preset_name, paper in PAPER_ROWS:
        row = dict(group="", name=name, paper=dict(zip(KEYS, paper, strict=True)))
        row["arch"] = seed002.preset_arch(preset_name, d) if preset_name else ""
        if preset_name.startswith("pp_mobileseg"):
            row["latency_output"] = seed002.VIM_OUTPUT
        out.append(row)
    for size in ("tiny", "base"):
        arch = seed002.preset_arch(f"pp_mobileseg_{size}", d)
        out.append(dict(group=NO_VIM, name=f"PP-MobileSeg-{size.title()}, no VIM", arch=arch))
    return tuple(out)


def table_section(smoke: bool) -> ml_collections.ConfigDict:
    """The `table` section: the rows above and the paper's three columns."""
    return ml_collections.ConfigDict(
        dict(
            name="seed002_table1",
            title="Seed 002, Table 1: Results on ADE20K validation set (latency with the final "
            "ArgMax, 512x512, single thread)"
            + (" [smoke: toy_scenes many, 64 px]" if smoke else ""),
            workdir="/tmp/s2t1_smoke" if smoke else "runs/seed002_table1",
            rows=rows(smoke),
            columns=seed002.columns(REFERENCE),
            latency=measured_latency_section(smoke, "labels"),
            ratios=(
                dict(
                    name="PP-MobileSeg-Base / PP-MobileSeg-Tiny (VIM)",
                    column="latency",
                    numerator="PP-MobileSeg-Base",
                    denominator="PP-MobileSeg-Tiny",
                ),
            ),
            notes=(
                f"Latency: PP-MobileSeg rows through VIM ({seed002.VIM_OUTPUT}: 16 classes "
                "kept), LR-ASPP and the 'without VIM' rows through the full upsample + argmax.",
                "Parameters: the released code's counts (the paper's 1.44 / 5.71 M are not "
                "reproducible from it).",
                "mIoU: "
                + (
                    "toy_scenes many (33 classes), not ADE20K: a pipeline check."
                    if smoke
                    else "ADE20K, PP-MobileSeg's recipe for every row, from random weights; "
                    "see the config."
                ),
            ),
        )
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 1 sweep and table: ADE20K (default, a GPU / TPU) or `smoke` (CPU)."""
    smoke = parse_arg(arg, ARGS, "seed002_table1") == "smoke"
    d = seed002.dataset("ade20k", smoke)
    c = ml_collections.ConfigDict()
    c.data = seed002.data_config(d, smoke)
    c.train = seed002.train_config(smoke)
    c.wandb = wandb_section("seed002_table1", smoke)
    c.search = seed002.family_grid("seed002_table1", d)
    c.table = table_section(smoke)
    return c
