"""Fake weight files for the tests: every tensor of an encoder's name table, with the shape the
reference framework stores and distinct random values, written as the format's container."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from models.encoders import ENCODERS
from nas.weights import apply, layout


def _torch_shape(path: str, shape: tuple[int, ...], fmt: str) -> tuple[int, ...]:
    # The inverse of the layouts, written out here rather than taken from nas.weights.layout.
    if len(shape) == 4 and fmt in ("timm", "torchvision", "paddle"):
        h, w, i, o = shape
        return (o, i, h, w)
    if len(shape) == 4 and fmt == "keras" and "spatial" in path:
        h, w, one, c = shape
        return (h, w, c, one)
    return shape


def fake_tensors(encoder: str, fmt: str, width: float = 1.0, seed: int = 0) -> dict:
    """{file name: array} of `encoder` at `width` in format `fmt`, plus the head and counter
    tensors a real file holds."""
    family = ENCODERS[encoder]
    config = family.config(width=width)
    shapes = apply._shapes(encoder, config, apply.ConvSpec())
    targets = layout.targets(family.names[fmt](family.fixed["variant"], config), fmt)
    rng = np.random.default_rng(seed)
    out = {}
    for name, t in targets.items():
        shape = _torch_shape(t.path, shapes[(t.collection, t.path)], fmt)
        out[name] = rng.normal(0, 1, shape).astype(np.float32)
    if fmt in ("timm", "torchvision"):
        out["classifier.weight"] = np.zeros((1000, 1280), np.float32)
        out["bn1.num_batches_tracked"] = np.zeros((), np.int64)
    return out


def write(path: Path, tensors: dict) -> Path:
    """`tensors` as a .safetensors or a pickled .pdparams file at `path`."""
    if path.suffix == ".pdparams":
        path.write_bytes(pickle.dumps(tensors))
    else:
        save_file(tensors, str(path))
    return path
