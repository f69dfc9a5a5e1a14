"""The Keras round trip (issue 13's numerical check): a `keras.applications` MobileNetV3 with
random weights and non-trivial BN statistics, saved as .h5 and as .keras, imported into
segnas's encoder, gives the same stride-32 features on the same images."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from experiments.benchmarks.keras_import import keras_model
from models.encoders import ENCODERS
from nas.space.arch import Arch
from nas.weights.apply import load, with_pretrained

keras = pytest.importorskip("keras")

# Keras import, two model builds and saves, eager inference: about 90 s on the 2-core VM
pytestmark = pytest.mark.slow


def _arch(encoder: str) -> Arch:
    return Arch.from_dict(
        {
            "schema": 2,
            "encoder": {"name": encoder, "width": 1.0, "depth": 1.0},
            "decoder": {"name": "unet", "kind": "bilinear"},
            "conv": {"type": "depthwise"},
            "resolution": [96, 64],
            "output_stride": 32,
            "num_classes": 2,
        }
    )


def _segnas_features(arch: Arch, pretrained, images: np.ndarray) -> np.ndarray:
    family = ENCODERS[arch.encoder.name]
    enc = family.build(arch.encoder.config, 32, arch.conv, "encoder")
    v = enc.init(jax.random.PRNGKey(1), images[:1])
    v = with_pretrained(
        {"params": {"encoder": v["params"]}, "batch_stats": {"encoder": v["batch_stats"]}},
        pretrained,
    )
    v = {k: t["encoder"] for k, t in v.items()}
    return np.asarray(enc.apply(v, images, train=False)[32])


@pytest.mark.parametrize(
    ("variant", "suffix"), [("large", ".h5"), ("large", ".keras"), ("small", ".h5")]
)
def test_keras_mobilenet_v3_features_match(tmp_path: Path, variant: str, suffix: str) -> None:
    m = keras_model(variant, seed=13)  # random weights and BN statistics
    path = tmp_path / f"mnv3{suffix}"
    m.save(path)
    images = np.random.default_rng(1).normal(0, 1, (2, 96, 64, 3)).astype(np.float32)
    want = np.asarray(m(images, training=False))
    arch = _arch(f"mobilenet_v3_{variant}")
    got = _segnas_features(arch, load(str(path), "keras", arch), images)
    assert got.shape == want.shape == (2, 3, 2, 960 if variant == "large" else 576)
    diff = float(np.abs(got - want).max())
    print(
        f"keras {variant} {suffix}: max abs diff {diff:.3g}, feature scale {np.abs(want).max():.3g}"
    )
    assert diff <= 1e-4
