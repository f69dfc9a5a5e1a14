"""Quickstart: a hardware-aware, multi-objective architecture search on toy_scenes, on a CPU.

    segnas search --config experiments/quickstart.py --workdir runs/quickstart
    segnas search --config experiments/quickstart.py:smoke --workdir /tmp/qs_smoke  # CI

What it does: NSGA-II over seed 000's joint space (MobileNetV3 encoder, decoder, width;
depthwise convolutions, see below) at small resolutions (64 and 96 px), 12 candidates, each
trained for the same budget of 100 steps of 8 images on toy_scenes `binary` (foreground vs
background, seed 000's task; generated at 96 px), two at a time (each worker pinned to one
core), scored by validation mIoU (evaluated once, at the end, on the 96 px masks) and by its
latency on this CPU (LiteRT, XNNPACK, 1 thread) predicted from a latency table. The table is
built first, for this space, when `search.latency_tables.litert-cpu` does not exist (kept in
the workdir; point the field at an existing table to skip that step). Outputs in the workdir:
trials.jsonl, pareto.json (front + hypervolume), pareto.png, pareto.html, winners/*.tflite with
their parity reports, W&B offline runs (one per candidate + a summary; `wandb sync` them).
Re-running the command continues the study; `--workers 1` trains one candidate at a time.

Measured: `python experiments/benchmarks/quickstart_run.py` runs toy_train for its images/s
and then this command with an empty compilation cache, and writes wall time, CPU time, the
outcomes, budgets, mIoU range, front, hypervolume and parity to
experiments/benchmarks/results/quickstart.json (the README quotes it). Compiling is about half
of a candidate's time on one core (XLA:CPU, 50-100 s per candidate on this VM; not charged to
its budget).

Every field can be overridden, e.g. `--config.search.num_trials=20`,
`--config.search.strategy=tpe`, `--config.train.max_minutes=2`,
`--config.search.max_latency_ms.litert-cpu=3.0` (a latency budget: slower candidates are not
trained).
"""

from __future__ import annotations

import ml_collections

from experiments.common import data_section, parse_arg, wandb_section
from experiments.toy_train import get_config as toy_train_config

ARGS = ("", "smoke")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The quickstart search config (NSGA-II, 12 candidates); `smoke`: 3 tiny trials for CI."""
    smoke = parse_arg(arg, ARGS, "quickstart") == "smoke"
    # data / train / wandb sections of the toy training run; the driver sets each candidate's
    # arch (and its W&B group = study name, name = study-archid).
    c = toy_train_config("smoke" if smoke else None)
    del c["arch"]
    if not smoke:
        # Foreground vs background (seed 000's task): separates candidates within the 100
        # steps each gets here; the 5-shape variant needs ~900 steps to pass val/miou 0.6.
        # Generated at 96 px, the largest resolution searched: 64 px candidates train on
        # images scaled down, and every candidate is scored on the same 96 px masks
        # (train.eval_protocol "label").
        c.data = data_section("toy_scenes/binary", height=96, width=96)
    num_classes = 2 if not smoke else 5

    # Seed 000's joint space (nas.space.presets.SPACES["seed000"]) at CPU-sized widths/resolutions,
    # depthwise convolutions only: XLA's grouped convolutions are ~10x slower per training
    # step on CPU (measured: 3.8 s vs 0.38 s, MobileNetV3-Small, 64 px, batch 8), so the
    # conv_type dimension is left to GPU / TPU sweeps (experiments/seed000/table1.py). So is
    # EfficientNet-Lite0, the slowest encoder to train on this CPU (its candidates took 2-3 x
    # as long as MobileNetV3's at the same step budget).
    # One tuple of values per dimension path (nas/space/space.py); the rest as in
    # SPACES["seed000"] (U-Net decoder kinds, depth 1, output stride 32).
    space = dict(
        encoder=dict(name=("mobilenet_v3_large", "mobilenet_v3_small"), width=(0.5, 1.0)),
        decoder=dict(name=("unet",), kind=("bilinear", "channel_attention", "mlp")),
        conv=dict(type=("depthwise",)),
        resolution=((64, 64), (96, 96)),
        output_stride=(32,),
        num_classes=num_classes,
    )
    if smoke:
        space.update(
            encoder=dict(name=("mobilenet_v3_small",), width=(0.5, 1.0)),
            decoder=dict(name=("unet",), kind=("bilinear", "mlp")),
            resolution=((32, 32),),
        )

    # Per-candidate budget: 100 steps of 8 images, the same for every candidate (equal
    # budgets: a candidate is complete only at its full step count). max_minutes is only a
    # safety net against a stalled candidate (compiling is not charged to it): far above the
    # slowest candidate's training time here, so no candidate is a `timeout`.
    c.train.update(
        steps=4 if smoke else 100,
        batch_size=4 if smoke else 8,
        lr=3e-3 if smoke else 1e-2,
        warmup_steps=1 if smoke else 10,
        max_minutes=0.0 if smoke else 15.0,
        eval_every=0,
        checkpoint_every=2 if smoke else 100,
        progress=not smoke,
    )
    c.wandb = wandb_section("quickstart", mode="offline")

    c.search = ml_collections.ConfigDict(
        dict(
            study_name="quickstart",
            # Local worker processes (--workers overrides), each pinned to its share of the
            # cores (nas.cli.search): two on a 2-core CPU train two candidates side by side on
            # one core each.
            workers=1 if smoke else 2,
            strategy="nsga2",  # random | grid | ablation | nsga2 | tpe
            space=space,
            baseline="",  # ablation centre; '' = the space's first values
            num_trials=3 if smoke else 12,  # distinct architectures to evaluate
            seed=0,
            population_size=6,  # NSGA-II generation size
            startup_trials=6,  # TPE: random trials before modelling
            objectives=("val/miou", "latency/litert-cpu"),
            # target -> table path; '' = WORKDIR/latency-<target>.json
            latency_tables=ml_collections.ConfigDict({"litert-cpu": ""}),
            build_missing_tables=True,
            max_latency_ms=ml_collections.ConfigDict({}),  # e.g. {"litert-cpu": 3.0}
            max_params=ml_collections.FieldReference(None, field_type=float),
            max_bytes=ml_collections.FieldReference(None, field_type=float),
            max_macs=ml_collections.FieldReference(None, field_type=float),
            train_infeasible=False,  # True: train constraint-breaking candidates too
            # median rule on val/miou (needs train.eval_every > 0 to see intermediate results)
            prune=dict(enabled=False, min_trials=3, warmup_steps=40),
            reference_point=ml_collections.ConfigDict({}),  # objective -> hypervolume reference
            heartbeat_interval=30,  # s; a dead worker's trial is retried after
            grace_period=90,  # this many s without heartbeat
            max_retry=10,  # a kill is retried from its checkpoint, never a failure
            max_failures=5,  # the search ends after this many timeout / diverged / failed
            max_duplicates=30,  # ... or this many trials in a row that trained nothing
            evaluator="nas.train.loop:train_and_evaluate",
            winners=dict(max_count=0 if smoke else 2, quantize="none", output="logits"),
        )
    )
    return c
