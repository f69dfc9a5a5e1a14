"""Helpers shared by the trainer's tests (tests/nas/train, tests/nas/cli/test_train.py): the
environment of `segnas train` subprocesses, and a tiny Linen model for fast step-level tests."""

from __future__ import annotations

import os
from pathlib import Path

import flax.linen as nn
import jax

ROOT = Path(__file__).resolve().parents[3]


def subprocess_env(jax_cache: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(jax_cache),
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **extra,
    }
    env.pop("XLA_FLAGS", None) if "XLA_FLAGS" not in extra else None
    return env


class Tiny(nn.Module):
    """conv-BN-relu and two heads: full-resolution logits and a coarse mask at 1/2."""

    num_classes: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, dict]:
        h = nn.Conv(4, (3, 3), name="conv")(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h))
        coarse = nn.Conv(self.num_classes, (1, 1), name="coarse")(nn.avg_pool(h, (2, 2), (2, 2)))
        return nn.Conv(self.num_classes, (1, 1), name="head")(h), {"coarse_logits": coarse}
