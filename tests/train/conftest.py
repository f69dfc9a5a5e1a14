"""Fixtures for the trainer's tests: the smoke config on a private data dir, a shared XLA
compilation cache (so the several processes that train the smoke arch compile it once), and
a tiny Linen model for fast step-level tests."""

from __future__ import annotations

import os
from pathlib import Path

import flax.linen as nn
import jax
import ml_collections
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compilation cache for this session's processes (in-process and subprocesses)."""
    path = Path(os.environ.get("SEGNAS_TEST_JAX_CACHE") or tmp_path_factory.mktemp("jax"))
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """toy_scenes is generated here on first use (about a second for the smoke sizes)."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def smoke(data_dir: str, jax_cache: Path) -> ml_collections.ConfigDict:
    """experiments/toy_train.py:smoke, offline and quiet, reading toy data from data_dir."""
    from experiments.toy_train import get_config

    c = get_config("smoke")
    c.data.data_dir = data_dir
    c.train.progress = False
    c.wandb.mode = "disabled"
    return c


def subprocess_env(jax_cache: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(jax_cache),
           "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env.pop("XLA_FLAGS", None) if "XLA_FLAGS" not in extra else None
    return env


class Tiny(nn.Module):
    """conv-BN-relu and two heads: full-resolution logits and a coarse mask at 1/2."""

    num_classes: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, dict]:
        h = nn.Conv(4, (3, 3), name="conv")(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, name="bn")(h))
        coarse = nn.Conv(self.num_classes, (1, 1), name="coarse")(
            nn.avg_pool(h, (2, 2), (2, 2)))
        return nn.Conv(self.num_classes, (1, 1), name="head")(h), {"coarse_logits": coarse}
