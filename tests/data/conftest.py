"""Fixtures of the data-layer tests: tiny toy_scenes configs generated once per session."""

from __future__ import annotations

import ml_collections
import pytest

from data import pipeline

TINY = {"height": 32, "width": 32, "train_size": 20, "validation_size": 7, "test_size": 0}


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def toy_cfg(toy_dir: str) -> ml_collections.ConfigDict:
    """toy_scenes/images at 32x32, 20 train / 7 validation examples, no augmentation."""
    cfg = pipeline.default_data_config("toy_scenes/images")
    cfg.data_dir = toy_dir
    cfg.builder_kwargs.update(TINY)
    cfg.preprocess_train = "normalize(-1, 1)"
    return cfg
