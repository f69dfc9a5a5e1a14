"""VIM's label agreement with the full upsample + argmax as K varies, on toy_scenes/many.

    python experiments/benchmarks/vim_agreement.py           # the committed result
    python experiments/benchmarks/vim_agreement.py --quick   # smoke test, writes nothing

The Valid Interpolate Module (`models.vim`) upsamples only the K classes most frequent in the
low-resolution argmax. Its labels equal the full upsample + argmax's wherever no class beyond
the K kept wins; how often that holds depends on how many classes a model predicts per image,
so it is measured on a trained model in the many-class regime: PP-MobileSeg-Tiny's parts
(StrideFormer-Tiny + AAM, whose logits are at 1/16) trained briefly on CPU on the 33-class
`toy_scenes/many` at 96x96 (the trainer, `nas.train.loop`, with its house defaults but
fewer steps), then evaluated on the validation split. A briefly trained model predicts fewer
classes than the labels hold, so the same figures are also measured for `labels`: the logits
of a perfect, calibrated model at the same low resolution (`label_logits`: the log of each
class's share of each cell, floored at 1e-3), which carry every class a cell holds. For each
K in KS, in `model` and `labels`:

- `agreement`: the share of all validation pixels where `vim_labels(low, (H, W), K)` equals
  `full_labels(low, (H, W))` (low: `aux["low_logits"]` of `model.apply(..., train=False)`);
- `images_identical`: the share of images whose labels agree everywhere; `worst_image`: the
  lowest per-image agreement;
- `agreement_covered`: the agreement over the images with at most K classes present in the
  low-resolution argmax. VIM drops none of those classes, yet this stays below 1: a class
  that wins at none of a pixel's low-resolution neighbours can win their interpolation (a
  small object, second in every cell around it), and VIM never upsampled it. Log-shares,
  very negative where a class is nearly absent, make that common, so `labels` shows it most.

Also the classes present per image in each low-resolution argmax (what VIM counts;
`classes_present_low`) and in the labels (`classes_present_truth`), mean and max, and the
model's val/miou. The data are generated into the workdir (never a shared cache, which could
hold an older `many`). Figures go to experiments/benchmarks/results/vim_agreement.json
(`--name`, `--no-save`); exit code 0 when the model's agreement at K = 16 is >= 99.9 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import ml_collections
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from nas.errors import UserError  # noqa: E402

KS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
DATASET = "toy_scenes/many"
RESOLUTION = 96  # logits at 6x6; 128 px trains at ~3.4 images/s here, too slow to learn
STEPS = 400  # ~10 min at 5.4 images/s (batch 8, 96 px, 2 cores shared with other jobs)
MAX_MINUTES = 11.0  # a slower machine stops early (status "timeout") and is measured as is


def make_config(
    quick: bool, steps: int, resolution: int, data_dir: str, lr: float = 6e-3
) -> ml_collections.ConfigDict:
    """The training config: StrideFormer-Tiny + AAM on toy_scenes/many at `resolution`."""
    from data.toy_scenes import config_for
    from experiments.common import arch_section, data_section, train_section, wandb_section

    num_classes = config_for("many").num_classes
    sizes = (64, 16) if quick else (2000, 200)
    c = ml_collections.ConfigDict()
    c.arch = arch_section(
        dict(
            encoder=dict(name="strideformer_tiny"),
            decoder=dict(name="aam", variant="aam"),
            resolution=(resolution, resolution),
            output_stride=32,
            num_classes=num_classes,
        )
    )
    c.data = data_section(
        DATASET,
        height=resolution,
        width=resolution,
        train_size=sizes[0],
        validation_size=sizes[1],
        test_size=0,
    )
    c.data.data_dir = data_dir
    # The house defaults, with BN running statistics at momentum 0.9 (a short run, as in
    # experiments/toy_train.py), a rate below its 8e-3 and clipped gradients: the attention
    # stages start with gradient norms in the hundreds.
    c.train = train_section(
        quick,
        steps=steps,
        batch_size=4 if quick else 8,
        lr=lr,
        warmup_steps=min(50, steps // 5),
        grad_clip_norm=1.0,
        eval_every=0,
        max_minutes=0.0 if quick else MAX_MINUTES,
        checkpoint_every=steps,
        bn_momentum=0.9,
        progress=False,
    )
    c.wandb = wandb_section("vim_agreement", smoke=True)
    return c


def low_classes(low_logits: np.ndarray) -> np.ndarray:
    """(N,) the number of classes present in each image's low-resolution argmax."""
    low = np.argmax(low_logits, axis=-1).reshape(len(low_logits), -1)
    return np.array([len(np.unique(row)) for row in low])


def agreement_curve(
    vim: dict[int, np.ndarray], full: np.ndarray, present: np.ndarray
) -> list[dict[str, float | int | None]]:
    """Per K (ascending): agreement figures (module docstring) of VIM's labels `vim[k]`
    (N, H, W) against the full ones `full`; `present`: (N,) classes in the low argmax."""
    rows = []
    for k in sorted(vim):
        same = vim[k] == full
        per_image = same.reshape(len(same), -1).mean(axis=1)
        covered = present <= k
        rows.append(
            {
                "k": k,
                "agreement": float(same.mean()),
                "images_identical": float(np.mean(per_image == 1.0)),
                "worst_image": float(per_image.min()),
                "images_covered": float(covered.mean()),
                "agreement_covered": float(same[covered].mean()) if covered.any() else None,
            }
        )
    return rows


def label_logits(mask: np.ndarray, num_classes: int, low_hw: tuple[int, int]) -> np.ndarray:
    """(N, h, w, C) logits of a perfect low-resolution model: the log of each class's share of
    the labels (N, H, W) in each cell of an (h, w) grid, floored at 1e-3 (absent classes);
    ignored pixels (255) count as class 0."""
    n, height, width = mask.shape
    h, w = low_hw
    onehot = np.eye(num_classes, dtype=np.float32)[np.where(mask == 255, 0, mask)]
    share = onehot.reshape(n, h, height // h, w, width // w, num_classes).mean(axis=(2, 4))
    return np.log(share + 1e-3)


def _summary(
    lows: list[np.ndarray], fulls: list[np.ndarray], vims: dict[int, list[np.ndarray]]
) -> dict[str, object]:
    """The figures of one kind of logits from its per-batch arrays (low logits, labels)."""
    low = np.concatenate(lows)
    present = low_classes(low)
    curve = agreement_curve(
        {k: np.concatenate(v) for k, v in vims.items()}, np.concatenate(fulls), present
    )
    return {
        "classes_present_low": {"mean": float(present.mean()), "max": int(present.max())},
        "curve": curve,
    }


def evaluate(
    config: ml_collections.ConfigDict, workdir: str, ks: tuple[int, ...]
) -> dict[str, object]:
    """The figures (module docstring) of the trained run in `workdir` on the validation split,
    for its low logits (`model`) and for `label_logits` of the labels (`labels`)."""
    import jax

    from data import pipeline
    from models.vim import full_labels, vim_labels
    from nas.space.build import build_model
    from nas.train.checkpoint import load_run

    arch, variables, _ = load_run(workdir)
    model = build_model(arch)
    hw = tuple(arch.resolution)
    apply = jax.jit(lambda x: model.apply(variables, x, train=False)[1]["low_logits"])
    full_fn = jax.jit(full_labels, static_argnums=1)
    vim_fn = jax.jit(vim_labels, static_argnums=(1, 2))
    runs = {"model": ([], [], {k: [] for k in ks}), "labels": ([], [], {k: [] for k in ks})}
    truth: list[int] = []
    for batch in pipeline.eval_batches(config.data, 20):
        real = ~np.all(batch["mask"] == 255, axis=(1, 2))  # padding rows: every pixel ignored
        low = apply(batch["image"])
        by_labels = label_logits(batch["mask"], arch.num_classes, tuple(low.shape[1:3]))
        for key, logits in (("model", low), ("labels", by_labels)):
            lows, fulls, vims = runs[key]
            lows.append(np.asarray(logits)[real])
            fulls.append(np.asarray(full_fn(logits, hw))[real])
            for k in ks:
                vims[k].append(np.asarray(vim_fn(logits, hw, k))[real])
        truth.extend(len(np.unique(m)) for m in batch["mask"][real])
    return {
        "images": len(truth),
        "low_hw": list(runs["model"][0][0].shape[1:3]),
        "classes_present_truth": {"mean": float(np.mean(truth)), "max": int(np.max(truth))},
        **{key: _summary(*run) for key, run in runs.items()},
    }


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke test: 4 steps, 64 px, no file")
    p.add_argument("--steps", type=int, help=f"training steps (default {STEPS}; quick 4)")
    p.add_argument(
        "--resolution", type=int, help=f"square input side (default {RESOLUTION}; quick 64)"
    )
    p.add_argument("--lr", type=float, default=6e-3, help="peak learning rate")
    p.add_argument("--workdir", help="run folder (default: a new temporary folder)")
    p.add_argument("--name", default="vim_agreement", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    """Train, measure, print the curve, write the result; exit 0 if K=16 agrees >= 99.9 %."""
    args = _args(argv)
    from nas.train.loop import train_and_evaluate

    steps = args.steps or (4 if args.quick else STEPS)
    resolution = args.resolution or (64 if args.quick else RESOLUTION)
    workdir = args.workdir or tempfile.mkdtemp(prefix="segnas_vim_")
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        print(f"error: {workdir} already holds a run; use a new --workdir", file=sys.stderr)
        return 2
    config = make_config(args.quick, steps, resolution, os.path.join(workdir, "tfds"), args.lr)
    t0, load_before = time.time(), loadavg()
    with LoadMonitor() as load:
        result = train_and_evaluate(config, workdir)
        train_s = time.time() - t0
        if result.status not in ("complete", "timeout"):
            print(f"error: training {result.status}: {result.message}", file=sys.stderr)
            return 1
        figures = evaluate(config, workdir, KS)
    figures = {
        "status": result.status,
        "val_miou": result.metrics.get("val/miou"),
        "train_steps": result.step,
        "train_images_per_s": result.metrics.get("train/images_per_s"),
        "train_wall_s": train_s,
        "wall_s": time.time() - t0,
        **figures,
    }
    print(
        f"model       strideformer_tiny + aam, {resolution} px, {result.step} steps "
        f"({result.status}): val/miou {figures['val_miou']:.3f}, {train_s:.0f} s in all"
    )
    truth, (h, w) = figures["classes_present_truth"], figures["low_hw"]
    print(
        f"labels      {truth['mean']:.2f} classes per image (max {truth['max']}), "
        f"{figures['images']} images; logits at {h}x{w}"
    )
    for key in ("model", "labels"):
        low = figures[key]["classes_present_low"]
        print(f"{key:<12}{low['mean']:.2f} classes per image (max {low['max']}) in the argmax")
        for row in figures[key]["curve"]:
            covered = row["agreement_covered"]
            print(
                f"  K={row['k']:<3d}    agreement {100 * row['agreement']:8.4f} %, identical "
                f"images {100 * row['images_identical']:5.1f} %, worst "
                f"{100 * row['worst_image']:6.2f} %; covered {100 * row['images_covered']:5.1f} %"
                f" ({'-' if covered is None else f'{100 * covered:.4f} %'})"
            )
    at16 = next((r["agreement"] for r in figures["model"]["curve"] if r["k"] == 16), None)
    if not (args.quick or args.no_save):
        params = {"argv": argv, "dataset": DATASET, "arch": config.arch.to_dict(), "ks": KS}
        path = write_result(
            args.name, figures, params=params, load_before=load_before, load_during=load.summary()
        )
        print(f"result      {path}")
    print(f"total       {figures['wall_s']:.0f} s; workdir {workdir}")
    return 0 if at16 is not None and at16 >= 0.999 else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:  # a bad option or config: one line, exit code 2
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
