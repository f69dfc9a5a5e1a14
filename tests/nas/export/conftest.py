"""Fixtures of the export tests only: a flatbuffer doctor and toy_scenes images (the tiny arch,
data config and trained model they share with tests/nas/cli live in tests/nas/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def doctor():
    """`doctor(tfl, builtin_code, custom_code=None)`: the same model with its first operator
    code replaced, e.g. by a Flex custom op or a STABLEHLO_* op the runtime lacks."""
    from ai_edge_litert.tools import flatbuffer_utils

    def doctor(tfl: bytes, builtin: int, custom: bytes | None = None) -> bytes:
        m = flatbuffer_utils.read_model_from_bytearray(bytearray(tfl))
        m.operatorCodes[0].builtinCode = builtin
        m.operatorCodes[0].deprecatedBuiltinCode = min(builtin, 127)
        m.operatorCodes[0].customCode = custom
        return bytes(flatbuffer_utils.convert_object_to_bytearray(m))

    return doctor


@pytest.fixture(scope="session")
def toy_images(toy_data_cfg) -> dict[str, np.ndarray]:
    """8 validation images (parity) and 8 training images (int8 calibration)."""
    from nas.export.policy import dataset_images

    return {
        "eval": np.stack(dataset_images(toy_data_cfg, 8, train=False)),
        "train": np.stack(dataset_images(toy_data_cfg, 8, train=True)),
    }
