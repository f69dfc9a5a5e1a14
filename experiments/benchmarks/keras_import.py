"""The pretrained-weights import, checked offline: a `keras.applications` MobileNetV3 file
imported into segnas's encoder gives the same stride-32 features.

    .venv/bin/python experiments/benchmarks/keras_import.py [--resolution 224] [--images 4]

For each of MobileNetV3-Large and -Small: `keras.applications.MobileNetV3*(weights=None,
include_top=False, include_preprocessing=False)` built with a fixed seed, every BatchNorm
given random statistics and affine parameters (so none is the identity), saved as `.h5` and
as `.keras`; each file imported through `train.init_from`'s path (`nas.weights.apply.load`
with format `keras`, then `with_pretrained`), and segnas's encoder and the Keras model run on
the same random images. Prints and writes the max abs difference of the stride-32 features
and their scale to experiments/benchmarks/results/keras_import.json (`--no-save`: print
only). The unit test (tests/nas/weights/test_keras.py) checks the same at 96x64 with a bar
of 1e-4.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import loadavg, write_result  # noqa: E402
from models.encoders import ENCODERS  # noqa: E402
from nas.space.arch import Arch  # noqa: E402
from nas.weights.apply import load, with_pretrained  # noqa: E402


def keras_model(variant: str, seed: int):
    """The Keras MobileNetV3 with random weights and random BatchNorm statistics."""
    import keras

    keras.utils.set_random_seed(seed)
    build = {
        "large": keras.applications.MobileNetV3Large,
        "small": keras.applications.MobileNetV3Small,
    }
    m = build[variant](
        weights=None, include_top=False, include_preprocessing=False, input_shape=(None, None, 3)
    )
    rng = np.random.default_rng(seed)
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c),
                    rng.normal(0, 0.1, c),
                    rng.normal(0, 0.2, c),
                    rng.uniform(0.5, 2.0, c),
                ]
            )
    return m


def segnas_features(variant: str, path: Path, images: np.ndarray) -> np.ndarray:
    """Stride-32 features of segnas's encoder with the file's weights imported."""
    arch = Arch.from_dict(
        {
            "schema": 2,
            "encoder": {"name": f"mobilenet_v3_{variant}", "width": 1.0, "depth": 1.0},
            "decoder": {"name": "unet", "kind": "bilinear"},
            "conv": {"type": "depthwise"},
            "resolution": list(images.shape[1:3]),
            "output_stride": 32,
            "num_classes": 2,
        }
    )
    enc = ENCODERS[arch.encoder.name].build(arch.encoder.config, 32, arch.conv, "encoder")
    v = enc.init(jax.random.PRNGKey(1), images[:1])
    v = with_pretrained(
        {"params": {"encoder": v["params"]}, "batch_stats": {"encoder": v["batch_stats"]}},
        load(str(path), "keras", arch),
    )
    return np.asarray(enc.apply({k: t["encoder"] for k, t in v.items()}, images, train=False)[32])


def main(argv: list[str]) -> int:
    """Both variants, both file formats: max abs feature difference."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--no-save", action="store_true")
    args = p.parse_args(argv)
    load_start = loadavg()
    shape = (args.images, args.resolution, args.resolution, 3)
    images = np.random.default_rng(args.seed).normal(0, 1, shape).astype(np.float32)
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("large", "small"):
            m = keras_model(variant, args.seed)
            want = np.asarray(m(images, training=False))
            for suffix in (".h5", ".keras"):
                path = Path(tmp) / f"mnv3_{variant}{suffix}"
                m.save(path)
                got = segnas_features(variant, path, images)
                diff = float(np.abs(got - want).max())
                key = f"{variant}{suffix.replace('.', '_')}"
                figures[key] = {
                    "max_abs_diff": diff,
                    "feature_abs_max": float(np.abs(want).max()),
                    "shape": list(got.shape),
                }
                print(f"{key}: features {got.shape}, max abs diff {diff:.3g}")
    figures["max_abs_diff"] = max(f["max_abs_diff"] for f in figures.values())
    if not args.no_save:
        params = {"argv": argv, "resolution": args.resolution, "images": args.images}
        out = write_result("keras_import", figures, params=params, load_before=load_start)
        print(f"result: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
