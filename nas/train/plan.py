"""What a training config asks for, validated before anything runs: the arch and the numbers.

Every bad value is a `UserError` naming the field (`train.steps`, `config.arch`, ...), the
value and what is allowed.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from models.layers import BN_MOMENTUM
from nas.errors import UserError, check_int, check_number
from nas.space.arch import Arch
from nas.space.resolve import resolve_arch_spec
from nas.train.steps import EVAL_PROTOCOLS


def resolve_arch(config: ml_collections.ConfigDict, arch: Arch | None, num_classes: int) -> Arch:
    """`arch`, else `config.arch`: a preset name, an arch JSON file, or a dict of Arch
    fields; its `num_classes` set to the dataset's."""
    if arch is None:
        arch = resolve_arch_spec(config.get("arch"))
    try:
        return arch.replace(num_classes=num_classes)
    except ValueError as e:
        raise UserError(f"config.arch: {e}") from None


def _int(cfg: ml_collections.ConfigDict, name: str, low: int) -> int:
    """`train.<name>` as an integer >= `low`, else a UserError naming it."""
    return check_int(f"train.{name}", cfg.get(name), low)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The validated `config.train` numbers the loop needs, and its evaluation protocol
    (`eval_protocol`, one of `nas.train.steps.EVAL_PROTOCOLS`; default `label`)."""

    steps: int
    batch_size: int
    eval_batch_size: int
    eval_every: int
    checkpoint_every: int
    log_every: int
    keep: int
    max_seconds: float
    ema: float
    bn_momentum: float
    seed: int
    eval_protocol: str = EVAL_PROTOCOLS[0]
    # a checkpoint also after this many seconds of training since the last one (0: off), so
    # a kill loses at most that much whatever checkpoint_every says
    checkpoint_seconds: float = 60.0

    @classmethod
    def from_config(cls, t: ml_collections.ConfigDict) -> Plan:
        """The plan of `config.train`; UserError naming the first bad field."""
        n = jax.device_count()
        batch = _int(t, "batch_size", 1)
        eval_batch = t.get("eval_batch_size") or batch
        for name, b in (("batch_size", batch), ("eval_batch_size", eval_batch)):
            if b % n or b % jax.process_count():
                raise UserError(
                    f"train.{name}: got {b}; allowed: a multiple of the device "
                    f"count {n} (the batch is split over devices)"
                )
        ema = check_number(
            "train.ema", t.get("ema", 0.0), lambda v: 0 <= v < 1, "a decay in [0, 1) (0 = off)"
        )
        bn = check_number(
            "train.bn_momentum",
            t.get("bn_momentum", BN_MOMENTUM),
            lambda v: 0 < v < 1,
            f"a momentum in (0, 1) (the models' own: {BN_MOMENTUM})",
        )
        minutes = check_number(
            "train.max_minutes",
            t.get("max_minutes", 0),
            lambda v: v >= 0,
            "minutes >= 0 (0 = no limit)",
        )
        every_minutes = check_number(
            "train.checkpoint_minutes",
            t.get("checkpoint_minutes", 1.0),
            lambda v: v >= 0,
            "minutes >= 0 (0 = checkpoints by checkpoint_every only)",
        )
        protocol = t.get("eval_protocol", EVAL_PROTOCOLS[0])
        if protocol not in EVAL_PROTOCOLS:
            raise UserError(
                f"train.eval_protocol: got {protocol!r}; allowed: 'label' (logits upsampled "
                "to the labels' resolution) or 'output' (labels shrunk to the model's output "
                "resolution, seed 000's protocol)"
            )
        return cls(
            steps=_int(t, "steps", 1),
            batch_size=batch,
            eval_batch_size=eval_batch,
            eval_every=_int(t, "eval_every", 0),
            checkpoint_every=_int(t, "checkpoint_every", 1),
            log_every=_int(t, "log_every", 1),
            keep=_int(t, "keep_checkpoints", 1),
            max_seconds=60.0 * minutes,
            ema=float(ema),
            bn_momentum=float(bn),
            seed=_int(t, "seed", 0),
            eval_protocol=protocol,
            checkpoint_seconds=60.0 * every_minutes,
        )
