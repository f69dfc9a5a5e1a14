"""toy_scenes `many` (shapes x size classes) and the `sizes` knob; older configs unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data import toy_scenes as ts

SMALL = {"height": 32, "width": 32}


def _values(cfg: ts.ToyScenesConfig, n: int, split: str = "train") -> set[int]:
    return set(
        np.unique(
            np.concatenate(
                [ts.example(cfg, split, i)["segmentation_mask"].ravel() for i in range(n)]
            )
        ).tolist()
    )


def test_many_classes_and_names():
    cfg = ts.config_for("many")
    assert (cfg.num_classes, cfg.sizes, cfg.height, cfg.width) == (33, 4, 128, 128)
    names = cfg.class_names
    assert len(names) == 33
    assert names[:6] == ("background", "disk_s0", "disk_s1", "disk_s2", "disk_s3", "square_s0")
    assert names[14] == "ring_s1" and names[32] == "ell_s3"  # 1 + 4 * 3 + 1, 1 + 4 * 7 + 3
    assert cfg.objects[13] == ("ring", 1) and cfg.objects[31] == ("ell", 3)
    assert cfg.shapes == ts.SHAPES
    # fewer classes than shapes x sizes: the first shapes, every size of each
    short = ts.config_for("many", {"num_classes": 10})
    assert short.shapes == ("disk", "square", "triangle")
    assert short.class_names[-2:] == ("square_s3", "triangle_s0")
    # sizes = 1 keeps the plain shape names
    assert ts.config_for("images").class_names == (
        "background",
        "disk",
        "square",
        "triangle",
        "ring",
    )
    assert ts.config_for("binary").class_names == ("background", "foreground")


def test_radius_ranges():
    many = ts.config_for("many")  # 0.08..0.32: steps of sqrt(2), a quarter step = 2 ** (1/8)
    expected = [
        (0.08, 0.08 * 2**0.375),
        (0.08 * 2**0.625, 0.08 * 2**0.875),
        (0.08 * 2**1.125, 0.08 * 2**1.375),
        (0.08 * 2**1.625, 0.32),
    ]
    for b, (low, high) in enumerate(expected):
        assert many.radius_range(b) == pytest.approx((low, high), rel=1e-12), b
    assert many.radius_range(0)[0] == 0.08 and many.radius_range(3)[1] == 0.32
    assert ts.config_for("images").radius_range(0) == (0.15, 0.30)  # one size: the whole range


def test_sampled_radii_fall_in_their_size_class():
    cfg = ts.config_for("many")
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(40):
        for o in ts._sample_objects(rng, cfg, video=False):
            shape, b = cfg.objects[o["shape"]]
            low, high = cfg.radius_range(b)
            assert low * 128 <= o["radius"] <= high * 128
            seen.add((shape, b))
    assert len(seen) == 32


def test_every_class_reachable_and_labels_in_range():
    cfg = ts.config_for("many")
    first = ts.example(cfg, "train", 0)
    assert first["image"].shape == (128, 128, 3) and first["image"].dtype == np.uint8
    assert first["segmentation_mask"].shape == (128, 128, 1)
    assert _values(cfg, 80) == set(range(33))
    assert _values(ts.config_for("many", {"num_classes": 10, **SMALL}), 60) == set(range(10))


def test_many_is_deterministic():
    cfg = ts.config_for("many", SMALL)
    a, b = ts.example(cfg, "validation", 7), ts.example(cfg, "validation", 7)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["image"], ts.example(cfg, "validation", 8)["image"])
    assert not np.array_equal(a["image"], ts.example(cfg, "train", 7)["image"])


@pytest.mark.parametrize(
    "base, key, n, digest",
    [  # sha256 prefixes of validation examples 0..n-1, computed before `sizes` existed
        ("images", "images", 8, "0a177a5377e73560"),
        ("binary", "small", 8, "0c4d668527bf84fa"),
        ("video", "clip", 3, "31f5aa423a91cd6f"),
        ("images", "nine", 8, "03f749a101a5a3f0"),
    ],
)
def test_older_configs_unchanged(base, key, n, digest):
    overrides = {
        "images": {},
        "small": SMALL,
        "clip": {**SMALL, "num_frames": 3},
        "nine": {**SMALL, "num_classes": 9},
    }[key]
    cfg = ts.config_for(base, overrides)
    h = hashlib.sha256()
    for i in range(n):
        e = ts.example(cfg, "validation", i)
        for k in sorted(e):
            h.update(e[k].tobytes())
    assert h.hexdigest()[:16] == digest


@pytest.mark.parametrize(
    "base, overrides, message",
    [
        ("many", {"sizes": 0}, r"sizes: got 0; allowed: 1\.\.8 \(1 with labels='foreground'\)"),
        ("many", {"sizes": 9}, "sizes: got 9; allowed: 1..8"),
        ("many", {"sizes": "4"}, "sizes: got '4'; allowed: a value of type int"),
        ("binary", {"sizes": 2}, "sizes: got 2; allowed: 1..8 \\(1 with labels='foreground'\\)"),
        (
            "many",
            {"num_classes": 34},
            r"num_classes: got 34; allowed: 2\.\.33 \(background \+ shapes x sizes\)",
        ),
        ("many", {"sizes": 2, "num_classes": 18}, r"num_classes: got 18; allowed: 2\.\.17"),
        ("images", {"num_classes": 10}, r"num_classes: got 10; allowed: 2\.\.9 \(background"),
    ],
)
def test_bad_sizes_and_classes(base, overrides, message):
    with pytest.raises(ValueError, match=message):
        ts.config_for(base, overrides)


def test_source_and_builder(tmp_path):
    assert "toy_scenes/many" in ts.SOURCE.names
    kwargs = ts.SOURCE.builder_kwargs("toy_scenes/many")
    assert (kwargs["sizes"], kwargs["num_classes"], kwargs["max_objects"]) == (4, 33, 12)
    named = tfds.builder("toy_scenes", config=ts.config_for("many"), data_dir=str(tmp_path))
    assert named.builder_config.name == "many" and not named.is_prepared()
    small = {**SMALL, "train_size": 3, "validation_size": 2, "test_size": 0}
    builder = ts.SOURCE.builder("toy_scenes/many", str(tmp_path), small)
    assert builder.info.metadata["num_classes"] == 33
    assert ts.SOURCE.num_classes(builder, None) == 33
    names = ts.SOURCE.class_names(builder)
    assert len(names) == 33 and names[32] == "ell_s3"
    stored = tfds.as_numpy(builder.as_dataset(split="validation", batch_size=-1))
    assert stored["segmentation_mask"].shape == (2, 32, 32, 1)
    assert stored["segmentation_mask"].max() < 33
