"""A trainer-shaped fake evaluator, so that search configs run end to end in seconds.

It returns its own result record with the fields the search driver reads (status, step,
metrics, wall_time_s, message), like the trainer's; its val/miou is a fixed function of the
arch id.
"""

from __future__ import annotations

from nas.space.arch import Arch
from nas.train.result import TrainResult


def fake_miou(arch: Arch) -> float:
    return round(0.3 + 0.6 * int(arch.id[:4], 16) / 0xFFFF, 6)


def fake_evaluate(config, workdir, *, arch: Arch, on_eval=None) -> TrainResult:
    return TrainResult("complete", int(config.train.steps), {"val/miou": fake_miou(arch)})
