"""Seed 002, Table 3: the VIM / StrideFormer / AAM ablation of PP-MobileSeg-Base on ADE20K.

    segnas search --config experiments/seed002/table3.py --workdir runs/seed002_table3  # GPU/TPU
    segnas table --config experiments/seed002/table3.py --workdir runs/seed002_table3
    segnas search --config experiments/seed002/table3.py:smoke --workdir /tmp/s2t34_smoke  # CPU
    segnas table --config experiments/seed002/table3.py:smoke --workdir /tmp/s2t34_smoke

The paper's rows add, one at a time, VIM, StrideFormer and AAM to SeaFormer-Base. SeaFormer is
another paper's model: its two rows are "paper only (not built)". segnas builds the other two:

- StrideFormer-Base + VIM, *without AAM*: the AAMSx8 decoder with both of Table 4's switches
  off (segnas's `aam` knobs `ensemble_vote=False, final_semantics=False`): the 1/16 and 1/32
  gates filter the 1/8 feature one after the other, re-embedded between them, with no 1/32
  semantics added: SeaFormer's fusion, which Table 4's caption names as what AAM replaces.
  5,960,262 params (16,384 more than with AAM: the re-embedding's 66,048 minus the 1/32
  embedding's 49,664); the paper's 5.54 M is 0.17 M *below* its AAM row, evidently SeaFormer's
  narrower fusion (segnas keeps AAM's 256 channels);
- StrideFormer-Base + AAM + VIM: PP-MobileSeg-Base (5,943,878 params; the paper's 5.71 M).

Latency: as Table 1 (LiteRT XNNPACK on this CPU, 1 thread, side by side, the argmax included),
the two VIM rows through the Valid Interpolate Module with 16 classes kept (`labels_vim16`),
and the same two models once more through the full upsample + argmax (the segnas-only rows
"no VIM"), the reference of the ratios. The paper's VIM gain, measured on SeaFormer-Base:
234.6 / 465.6 = 0.50.

mIoU: one grid over the two switches (4 models, experiments/seed002/__init__.py `aam_grid`),
shared with Table 4 (table4.py reads the same workdir). VIM is inference-only and agrees with
the full upsample on >= 99.9 % of labels at K = 16, so a VIM row shows its model's mIoU.
`:smoke`: toy_scenes `many` (33 classes) at 64x64, 2 steps, 3 timing rounds.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments import seed002
from experiments.common import measured_latency_section, parse_arg, wandb_section

ARGS = ("", "smoke")
NO_AAM = {"decoder.ensemble_vote": False, "decoder.final_semantics": False}
REFERENCE = "StrideFormer-Base + AAM, no VIM"
# (group, row as printed, decoder switches (None: not built), VIM, paper: mIoU, latency (ms),
# params (M); None: a segnas-only row)
PAPER_ROWS: tuple[tuple[str, str, dict | None, bool, tuple[float, ...] | None], ...] = (
    ("", "SeaFormer-Base", None, False, (40.20, 465.6, 8.27)),
    ("", "SeaFormer-Base + VIM", None, True, (40.20, 234.6, 8.17)),
    ("", "StrideFormer-Base + VIM", NO_AAM, True, (40.98, 235.1, 5.54)),
    ("", "StrideFormer-Base + AAM + VIM", {}, True, (41.57, 265.5, 5.71)),
    ("segnas: without VIM", "StrideFormer-Base, no VIM", NO_AAM, False, None),
    ("segnas: without VIM", REFERENCE, {}, False, None),
)
KEYS = ("miou", "latency", "params")


def rows(smoke: bool) -> tuple[dict[str, Any], ...]:
    """Table 3's rows (VIM rows timed through VIM) and the two built models without VIM."""
    d = seed002.dataset("ade20k", smoke)
    out = []
    for group, name, switches, vim, paper in PAPER_ROWS:
        row: dict[str, Any] = dict(group=group, name=name)
        built = switches is not None
        row["arch"] = seed002.preset_arch("pp_mobileseg_base", d, switches) if built else ""
        row["paper"] = dict(zip(KEYS, paper, strict=True)) if paper else {}
        if vim and built:
            row["latency_output"] = seed002.VIM_OUTPUT
        out.append(row)
    return tuple(out)


def table_section(smoke: bool) -> ml_collections.ConfigDict:
    """The `table` section: the rows above, Table 1's columns, latency ratios to the AAM
    model without VIM."""
    return ml_collections.ConfigDict(
        dict(
            name="seed002_table3",
            title="Seed 002, Table 3: Ablation Study of three proposed modules of "
            "PP-MobileSeg-Base on ADE20K dataset"
            + (" [smoke: toy_scenes many, 64 px]" if smoke else ""),
            workdir="/tmp/s2t34_smoke" if smoke else "runs/seed002_table3",
            rows=rows(smoke),
            columns=seed002.columns(REFERENCE),
            latency=measured_latency_section(smoke, "labels"),
            ratios=(
                dict(
                    name="AAM: (+ AAM + VIM) / (+ VIM)",
                    column="latency",
                    numerator="StrideFormer-Base + AAM + VIM",
                    denominator="StrideFormer-Base + VIM",
                ),
                dict(
                    name="VIM: (+ AAM + VIM) / (+ AAM, no VIM)",
                    column="latency",
                    numerator="StrideFormer-Base + AAM + VIM",
                    denominator=REFERENCE,
                ),
            ),
            notes=(
                "StrideFormer-Base without AAM: the AAMSx8 decoder with ensemble_vote and "
                "final_semantics off (SeaFormer's one-by-one fusion); see the config.",
                "The paper's VIM gain is SeaFormer-Base's: 234.6 / 465.6 = 0.50.",
                "mIoU: one sweep with Table 4 (4 models); a VIM row shows its model's mIoU "
                + ("(toy_scenes many, 33 classes: a pipeline check)." if smoke else "(ADE20K)."),
            ),
        )
    )


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The Table 3 sweep (shared with Table 4) and table: ADE20K or `smoke` (CPU)."""
    smoke = parse_arg(arg, ARGS, "seed002_table3") == "smoke"
    d = seed002.dataset("ade20k", smoke)
    c = ml_collections.ConfigDict()
    c.data = seed002.data_config(d, smoke)
    c.train = seed002.train_config(smoke)
    c.wandb = wandb_section("seed002_table3", smoke)
    c.search = seed002.aam_grid(d)
    c.table = table_section(smoke)
    return c
