"""Seed 002 (PP-MobileSeg: Explore the Fast and Accurate Semantic Segmentation Model on Mobile
Devices) configs, one per paper table and two more, and the recipe the tables share:

- `table1.py`: ADE20K (150 classes, 512x512): params, latency with the final argmax as a ratio
  to LR-ASPP MobileNetV3-large, mIoU; TopFormer / SeaFormer / MobileSeg rows paper only;
- `table2.py`: Cityscapes (19 classes, 1024x512 input, no VIM): the same columns;
- `table3.py`: the VIM / StrideFormer / AAM ablation on the Base model (ADE20K);
- `table4.py`: the AAM switches (ensemble vote, final semantics); it reads table3.py's sweep;
- `latency.py` (the latency table of the seed002 space) and `joint_search.py` (a
  quickstart-sized search over seed 000's, 001's and 002's families).

`segnas search --config experiments/seed002/tableK.py --workdir W` trains the rows (GPU / TPU),
`segnas table` with the same config and workdir prints the table; `:smoke` runs both on a CPU
(toy_scenes at 64 px, 2 steps; a few minutes per model on 2 cores, nearly all of it
compiling). The training recipe (`train_config`, `data_config`) is the paper's where segnas
has it:

- AdamW, weight decay 0.01 on conv / dense kernels only (nas/train/optim.py), so BatchNorm,
  biases and `pos_embed` are exempt, as in the released config;
- lr 6e-4: the released config's `learning_rate`; the paper's text says 6e-3, which is the
  released config's rate for the head only (6e-4 x its `lr_multi` 10). segnas has no
  per-layer lr multiplier, so the head trains at 6e-4 too; linear warm-up from 1e-6 over 1500
  iterations, then poly power 1.0 (`warmup_poly`) to 0;
- loss cross-entropy + Lovasz-softmax 4 : 1 (weights 0.8 / 0.2), EMA of the weights 0.999;
- batch 32, 80K iterations, from random weights (the paper starts from ImageNet weights:
  `--config.train.init_from.path=FILE --config.train.init_from.format=paddle` for one model);
- augmentation: random scale (ADE20K 0.5-2.0, Cityscapes 0.125-1.5, steps 0.25 / 0.125), crop,
  flip, photometric distortion, ImageNet mean / std (`standardize`). Paddle's distortion draws
  a *factor* for brightness (0.4 / 0.5 around 1, each change with probability 0.5); segnas's
  `photometric` adds an offset (+-0.4 / 0.5 x 128 levels) and applies every change always;
- evaluation: the whole image resized to the model's input (ADE20K 512x512; the released
  config resizes the short side to 512 keeping the ratio), scored at that size.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from experiments.common import data_section, loss_section, search_section, train_section
from nas.space.presets import preset

VIM_K = 16  # classes the Valid Interpolate Module keeps (models/vim.py's default bound)
VIM_OUTPUT = f"labels_vim{VIM_K}"  # a table row's latency output: labels through VIM
LRASPP = "lraspp_mobilenet_v3_large"
# dataset -> its name, classes, input (height, width), preprocessing; "smoke_*": toy stand-ins
# (toy_scenes `many`: 33 classes, few per image, VIM's regime; `images`: 5 classes)
DATASETS: dict[str, dict[str, Any]] = {
    "ade20k": dict(
        name="ade20k",
        classes=150,
        hw=(512, 512),
        train="random_scale(0.5, 2.0, 0.25) | random_crop(512, 512) | random_flip | "
        "photometric(51.2, 0.4, 0.4) | standardize",
        eval="resize(512, 512) | standardize",
    ),
    "cityscapes": dict(
        name="cityscapes/semantic_segmentation",
        classes=19,
        hw=(512, 1024),
        train="random_scale(0.125, 1.5, 0.125) | random_crop(512, 1024) | random_flip | "
        "photometric(64.0, 0.5, 0.5) | standardize",
        eval="resize(512, 1024) | standardize",
    ),
    "smoke_ade20k": dict(name="toy_scenes/many", classes=33, hw=(64, 64)),
    "smoke_cityscapes": dict(name="toy_scenes/images", classes=5, hw=(64, 128)),
}


def dataset(name: str, smoke: bool) -> dict[str, Any]:
    """The dataset entry a table trains on: `name`, or its toy stand-in when `smoke`."""
    return DATASETS[f"smoke_{name}" if smoke else name]


def preset_arch(
    name: str, d: dict[str, Any], changes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Preset `name` at dataset `d`'s input size and classes, with `changes` ({path: value},
    e.g. {"decoder.final_semantics": False}) applied: a table row's arch dict."""
    top = {"resolution": d["hw"], "num_classes": d["classes"]}
    return preset(name).with_values({**top, **(changes or {})}).to_dict()


def data_config(d: dict[str, Any], smoke: bool) -> ml_collections.ConfigDict:
    """The `data` section: the real dataset with the recipe's augmentation, or (smoke) the toy
    stand-in generated at the rows' input size (16 / 4 / 4 scenes)."""
    if not smoke:
        c = data_section(d["name"])
        c.preprocess_train, c.preprocess_eval = d["train"], d["eval"]
        return c
    h, w = d["hw"]
    c = data_section(d["name"], height=h, width=w, train_size=16, validation_size=4, test_size=4)
    c.preprocess_train = "random_flip | standardize"
    c.preprocess_eval = "standardize"
    return c


def train_config(smoke: bool) -> ml_collections.ConfigDict:
    """The `train` section: the paper's recipe (module docstring); `smoke`: 2 steps, batch 2."""
    return train_section(
        smoke,
        steps=2 if smoke else 80_000,
        batch_size=2 if smoke else 32,
        optimizer="adamw",
        lr=6e-4,
        schedule="warmup_poly",
        warmup_steps=1 if smoke else 1500,
        warmup_lr=1e-6,
        end_lr=0.0,
        power=1.0,
        weight_decay=0.01,
        ema=0.999,
        loss=loss_section(ce=0.8, lovasz=0.2),
        eval_every=2 if smoke else 8000,
        checkpoint_every=2 if smoke else 2000,
        keep_checkpoints=2,
        log_every=1 if smoke else 50,
        progress=not smoke,
    )


def columns(reference: str = "") -> tuple[dict[str, Any], ...]:
    """The paper's columns: mIoU (from the sweep), latency as a ratio to row `reference` (""
    for none: Table 4) and parameters (M, three decimals: the released code's counts)."""
    miou = dict(
        key="miou",
        kind="accuracy",
        title="mIoU (%)",
        metric="val/miou",
        scale=100.0,
        digits=2,
        command="segnas search --config {config} --workdir {workdir}",
    )
    latency = dict(key="latency", kind="latency", title="Latency (ms)", reference=reference)
    params = dict(
        key="params", kind="structural", title="Params (M)", metric="params", scale=1e-6, digits=3
    )
    return (miou, latency, params) if reference else (miou, params)


def family_grid(study_name: str, d: dict[str, Any]) -> ml_collections.ConfigDict:
    """Tables 1 and 2's sweep: a grid over encoder {mobilenet_v3_large, strideformer_tiny,
    strideformer_base} x decoder {lraspp, aam (variant aam | aamsx8)} on dataset `d`: 9 models,
    LR-ASPP MobileNetV3 and both PP-MobileSeg presets among them (a space is a product, so the
    three rows cannot be trained alone in one sweep)."""
    space = dict(
        encoder=dict(name=("mobilenet_v3_large", "strideformer_tiny", "strideformer_base")),
        decoder=dict(name=("lraspp", "aam"), variant=("aam", "aamsx8")),
        resolution=(d["hw"],),
        output_stride=(16,),  # LR-ASPP's; the aam decoder resets it to 32
        num_classes=d["classes"],
    )
    # 12 grid points but 9 archs (LR-ASPP has no variant): without the count the grid sampler
    # would keep re-proposing held archs until `max_duplicates` ends the sweep
    base = preset_arch(LRASPP, d)
    return search_section(study_name, "grid", space, baseline=base, num_trials=9)


def aam_grid(d: dict[str, Any]) -> ml_collections.ConfigDict:
    """Tables 3 and 4's sweep (one study, one workdir for both): PP-MobileSeg-Base with the AAM
    switches ensemble_vote x final_semantics on dataset `d`: 4 models, every built row of both
    tables (both switches off is Table 3's "StrideFormer without AAM")."""
    space = dict(
        encoder=dict(name=("strideformer_base",)),
        decoder=dict(
            name=("aam",),
            variant=("aamsx8",),
            ensemble_vote=(True, False),
            final_semantics=(True, False),
        ),
        resolution=(d["hw"],),
        output_stride=(32,),
        num_classes=d["classes"],
    )
    base = preset_arch("pp_mobileseg_base", d)
    return search_section("seed002_table3", "grid", space, baseline=base)
