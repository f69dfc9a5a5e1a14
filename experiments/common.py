"""What every experiments/ config shares: its argument and the base sections.

- `parse_arg(arg, allowed, name)`: the `:ARG` of `--config FILE.py:ARG`, checked (a ValueError
  naming the config and the allowed values, which `segnas` prints as one line, exit code 2);
- `arch_section(flat)`: a `config.arch` section from a flat arch dict;
- `data_section(name, **builder_kwargs)`: `data.pipeline.default_data_config` with builder
  arguments (toy_scenes' sizes) set;
- `loss_section(**weights)` and `train_section(smoke, **overrides)`: the trainer's fields with
  the house defaults (those of `experiments/toy_train.py`), a config changing only what differs;
- `wandb_section(group, smoke=False, **overrides)`: W&B offline (disabled in smoke mode).

A config composes these and overrides by keyword, so no config re-types another's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from nas.space.resolve import resolve_arch_spec

# The trainer's fields (nas/train/plan.py) in their canonical order. `bn_momentum` is optional:
# without it the models' own BatchNorm momentum (0.99) applies.
OPTIONAL_TRAIN_FIELDS: tuple[str, ...] = ("bn_momentum",)


def describe_allowed(allowed: tuple[str, ...]) -> str:
    """`("", "smoke")` -> "none or 'smoke'": the allowed config args in words."""
    words = ["none" if a == "" else repr(a) for a in allowed]
    if len(words) < 2:
        return words[0] if words else "nothing"
    return f"{', '.join(words[:-1])} or {words[-1]}"


def parse_arg(arg: str | None, allowed: tuple[str, ...], name: str) -> str:
    """The config argument (`None` read as ""), checked against `allowed`.

    Raises ValueError "NAME config arg: got 'x'; allowed: none or 'smoke'".
    """
    value = "" if arg is None else arg
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} config arg: got {value!r}; allowed: {describe_allowed(allowed)}")
    return value


def arch_section(arch: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A `config.arch` section from an arch JSON object, validated now so that a typo fails when
    the config loads, and written in its canonical schema-2 form (nested sections, so any knob
    is overridable as `--config.arch.encoder.width=0.75`; resolution a tuple). (A preset needs
    no section: `c.arch = "seed000_final"`.)"""
    d = resolve_arch_spec(dict(arch), "config.arch").to_dict()
    d["resolution"] = tuple(d["resolution"])
    return ml_collections.ConfigDict(d)


def data_section(name: str, **builder_kwargs: Any) -> ml_collections.ConfigDict:
    """The input pipeline of dataset `name` (`data.pipeline.default_data_config`) with
    `builder_kwargs` set on its builder (e.g. toy_scenes' height, width, train_size)."""
    from data.pipeline import default_data_config  # here: latency configs need no data

    c = default_data_config(name)
    if builder_kwargs:
        c.builder_kwargs.update(builder_kwargs)
    return c


def loss_section(**weights: Any) -> ml_collections.ConfigDict:
    """Loss weights: cross-entropy 1, everything else off, unless `weights` says otherwise."""
    base: dict[str, Any] = dict(
        ce=1.0,
        lovasz=0.0,
        jaccard=0.0,
        dice=0.0,
        bce=0.0,
        class_weights=(),  # empty: none; else one weight per class
        aux_weight=0.0,  # loss on the decoder's coarse mask
    )
    return ml_collections.ConfigDict(_updated(base, weights, "loss_section"))


def _train_base(smoke: bool) -> dict[str, Any]:
    # The house defaults: experiments/toy_train.py's values (full run / smoke run).
    return dict(
        steps=8 if smoke else 1100,
        batch_size=4 if smoke else 16,
        eval_batch_size=0,  # 0: same as batch_size
        optimizer="adam",  # adam | adamw | sgd
        lr=3e-3 if smoke else 8e-3,
        schedule="warmup_poly",  # constant | poly | warmup_poly | cosine | slow_start
        warmup_steps=2 if smoke else 50,
        warmup_lr=1e-5,  # warmup start / slow-start value
        end_lr=0.0,
        power=0.9,
        momentum=0.9,  # sgd only
        weight_decay=4e-5,
        grad_clip_norm=0.0,  # 0: no clipping
        ema=0.0,  # 0: off; seed 002 uses 0.999 over 80k steps
        bn_momentum=None,  # optional (OPTIONAL_TRAIN_FIELDS): absent unless given
        loss=None,  # loss_section()
        eval_every=4 if smoke else 100,
        # label: logits upsampled to the labels' resolution (Cityscapes / ADE20K scoring);
        # output: labels shrunk to the model's output resolution (seed 000; nas.train.steps)
        eval_protocol="label",
        checkpoint_every=2 if smoke else 200,
        keep_checkpoints=3,
        log_every=1 if smoke else 20,
        max_minutes=0.0,  # 0: no time limit
        seed=0,
        # a pretrained encoder: a local file and its format (keras | timm | torchvision |
        # paddle; nas/weights); empty: random initialisation
        init_from=dict(path="", format=""),
        distributed=False,  # jax.distributed.initialize (multi-host)
        progress=True,  # tqdm progress bar
    )


def train_section(smoke: bool, **overrides: Any) -> ml_collections.ConfigDict:
    """The `train` section: the house defaults (a full run, or a few steps when `smoke`) with
    `overrides` applied; `loss` takes a `loss_section(...)`, `bn_momentum` is added only when
    given. A field the trainer does not have is a ValueError naming the allowed ones."""
    d = _updated(_train_base(smoke), overrides, "train_section")
    if d["loss"] is None:
        d["loss"] = loss_section()
    for name in OPTIONAL_TRAIN_FIELDS:
        if d[name] is None:
            del d[name]
    return ml_collections.ConfigDict(d)


def search_section(
    study_name: str, strategy: str, space: Any, **overrides: Any
) -> ml_collections.ConfigDict:
    """The `search` section of a paper table's sweep: `strategy` over `space`, every listed
    candidate (num_trials 0), objectives val/miou, bytes and macs, no latency tables, no
    budgets, no winners exported; `overrides` replace fields (baseline, objectives, ...)."""
    base: dict[str, Any] = dict(
        study_name=study_name,
        strategy=strategy,
        space=space,
        baseline="",
        num_trials=0,  # 0: every candidate the strategy lists
        seed=0,
        objectives=("val/miou", "bytes", "macs"),
        latency_tables=ml_collections.ConfigDict({}),
        build_missing_tables=False,
        max_latency_ms=ml_collections.ConfigDict({}),
        max_params=ml_collections.FieldReference(None, field_type=float),
        max_bytes=ml_collections.FieldReference(None, field_type=float),
        max_macs=ml_collections.FieldReference(None, field_type=float),
        train_infeasible=False,
        population_size=8,
        startup_trials=10,
        prune=dict(enabled=False, min_trials=3, warmup_steps=0),
        reference_point=ml_collections.ConfigDict({}),
        heartbeat_interval=60,
        grace_period=300,
        max_retry=10,  # a kill is retried from its checkpoint, never a failure
        evaluator="nas.train.loop:train_and_evaluate",
        winners=dict(max_count=0, quantize="none", output="logits"),
    )
    return ml_collections.ConfigDict(_updated(base, overrides, "search_section"))


def measured_latency_section(smoke: bool, output: str | None = None) -> dict[str, Any]:
    """A table's `latency` section timing its rows side by side on this CPU: LiteRT + XNNPACK,
    1 thread, 20 rounds after 3 warm-up runs (`smoke`: 3 after 1); `output` ("labels": ending
    in the argmax, as deployed) when given, else the table's default."""
    d: dict[str, Any] = dict(
        mode="measure",
        target="litert-cpu",
        threads=1,
        rounds=3 if smoke else 20,
        warmup=1 if smoke else 3,
        seed=0,
        table="",
    )
    return d if output is None else {**d, "output": output}


def wandb_section(group: str, smoke: bool = False, **overrides: Any) -> ml_collections.ConfigDict:
    """The `wandb` section: project segnas, offline (`disabled` when `smoke`), run group
    `group`; `overrides` replace fields (mode, project, entity, name, tags)."""
    base: dict[str, Any] = dict(
        mode="disabled" if smoke else "offline",  # offline | online | disabled
        project="segnas",
        entity="",
        group=group,
        name="",
        tags=(),
    )
    return ml_collections.ConfigDict(_updated(base, overrides, "wandb_section"))


def _updated(base: dict[str, Any], overrides: Mapping[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"{what}: unknown field {unknown[0]!r}; allowed: {', '.join(base)}")
    return {**base, **overrides}
