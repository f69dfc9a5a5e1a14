"""Fixtures for the trainer's tests: the smoke config on the private data dir and the shared
XLA compilation cache of tests/nas/conftest.py."""

from __future__ import annotations

from pathlib import Path

import ml_collections
import pytest


@pytest.fixture
def smoke(data_dir: str, jax_cache: Path) -> ml_collections.ConfigDict:
    """experiments/toy_train.py:smoke, offline and quiet, reading toy data from data_dir, its
    encoder at depth 0.1 (5 blocks of 11: these tests check the loop, and compiling the model
    dominates them)."""
    from experiments.toy_train import get_config

    c = get_config("smoke")
    c.arch.encoder.depth = 0.1
    c.data.data_dir = data_dir
    c.train.progress = False
    c.wandb.mode = "disabled"
    return c
