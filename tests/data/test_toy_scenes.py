"""toy_scenes: shapes, determinism, labels, colour independence, configs, builder, video."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data import toy_scenes as ts

SMALL = {"height": 32, "width": 32}


@pytest.mark.parametrize(
    "shape, area",
    [
        ("disk", np.pi),
        ("square", 1.6**2),
        ("triangle", 3 * np.sqrt(3) / 4 * 1.25**2),
        ("ring", np.pi * (1 - 0.55**2)),
        ("bar", 2 * 0.6),
        ("cross", 2 * 2 * 0.56 - 0.56**2),
        ("crescent", 1.45074),  # unit disk minus its lens with the disk (0.45, 0), radius 0.8
        ("ell", 2 * 1.6 * 0.45 - 0.45**2),
    ],
)
def test_shape_areas(shape, area):
    g = np.linspace(-1.2, 1.2, 1201)
    x, y = np.meshgrid(g, g)
    assert ts._inside(shape, x, y).sum() * (2.4 / 1200) ** 2 == pytest.approx(area, abs=0.01)


def test_shapes_stay_within_the_render_reach():
    g = np.linspace(-2, 2, 801)
    x, y = np.meshgrid(g, g)
    for shape in ts.SHAPES:
        inside = ts._inside(shape, x, y)
        assert np.hypot(x, y)[inside].max() <= 1.25 + 1e-9 < ts.REACH, shape


def test_windowed_rendering_equals_whole_frame(monkeypatch):
    cases = [
        (ts.config_for("images", {**SMALL, "num_classes": 9, "max_radius": 0.6}), 40),
        (ts.config_for("video", {**SMALL, "num_frames": 5}), 15),
    ]
    windowed = [[ts.example(cfg, "train", i) for i in range(n)] for cfg, n in cases]
    monkeypatch.setattr(ts, "REACH", 1e4)  # a window larger than any frame
    for (cfg, _n), examples in zip(cases, windowed, strict=False):
        for i, e in enumerate(examples):
            whole = ts.example(cfg, "train", i)
            for k in e:
                np.testing.assert_array_equal(e[k], whole[k])


def test_unknown_shape_raises():
    with pytest.raises(ValueError, match="shape: got 'blob'"):
        ts._inside("blob", np.zeros(1), np.zeros(1))


def test_examples_are_deterministic_and_independent():
    cfg = ts.config_for("images", SMALL)
    a, b = ts.example(cfg, "train", 5), ts.example(cfg, "train", 5)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["segmentation_mask"], b["segmentation_mask"])
    for other in (
        ts.example(cfg, "train", 6),
        ts.example(cfg, "validation", 5),
        ts.example(ts.config_for("images", {**SMALL, "seed": 1}), "train", 5),
    ):
        assert not np.array_equal(a["image"], other["image"])
    assert a["image"].shape == (32, 32, 3) and a["image"].dtype == np.uint8
    assert a["segmentation_mask"].shape == (32, 32, 1)


def test_label_values_per_config():
    def values(cfg, n=40):
        return set(
            np.unique(
                np.concatenate(
                    [ts.example(cfg, "train", i)["segmentation_mask"].ravel() for i in range(n)]
                )
            )
        )

    assert values(ts.config_for("images", SMALL)) == {0, 1, 2, 3, 4}
    assert values(ts.config_for("binary", SMALL)) == {0, 1}
    assert values(ts.config_for("images", {**SMALL, "num_classes": 9}), 80) == set(range(9))
    assert ts.config_for("binary").shapes == ("disk", "square", "triangle", "ring")


def test_colour_carries_no_class_information():
    # Mean colour of each class's pixels, per image: across images every class averages to
    # mid-range (within 4 standard errors) with a wide spread; a class painted in "its"
    # colour would sit far from 127.5 with a small spread.
    cfg = ts.config_for("images", SMALL)
    per_class: list[list[np.ndarray]] = [[] for _ in range(5)]
    for i in range(300):
        e = ts.example(cfg, "train", i)
        mask, image = e["segmentation_mask"][..., 0], e["image"].astype(float)
        for c in np.unique(mask):
            per_class[c].append(image[mask == c].mean(0))
    for c, means in enumerate(per_class):
        means = np.array(means)
        assert len(means) > 100
        error = means.std(0) / np.sqrt(len(means))
        assert np.all(np.abs(means.mean(0) - 127.5) < 4 * error), (c, means.mean(0), error)
        assert np.all(means.std(0) > 45), (c, means.std(0))


def test_config_for_names_and_overrides(tmp_path):
    base = ts.config_for("images")
    assert base.name == "images" and (base.height, base.num_classes) == (64, 5)
    assert ts.config_for("images", {"height": 64}).name == "images"  # no change, no new name
    a = ts.config_for("images", {"height": 96, "width": 96})
    b = ts.config_for("images", {"height": 96, "width": 80})
    assert a.name.startswith("images_") and a.name != b.name
    assert a.description == "images with height=96, width=96"
    assert ts.config_for("images", {"height": 96, "width": 96}).name == a.name
    assert ts.config_for("video").labelled_frame == 5
    for name in ("images", "binary", "video"):  # tfds accepts the named configs as they are
        builder = tfds.builder(
            "toy_scenes", config=ts.config_for(name, {"seed": 0}), data_dir=str(tmp_path)
        )
        assert builder.builder_config.name == name and not builder.is_prepared()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"kind": "audio"}, "kind: got 'audio'; allowed: images | video"),
        ({"height": 96.5}, "height: got 96.5; allowed: a value of type int"),
        ({"min_radius": "big"}, "min_radius: got 'big'; allowed: a value of type float"),
        ({"seed": True}, "seed: got True; allowed: a value of type int"),
        ({"labels": "colour"}, "labels: got 'colour'"),
        ({"labels": "foreground"}, "num_classes: got 5; allowed: 2 with labels='foreground'"),
        ({"num_classes": 10}, "num_classes: got 10; allowed: 2..9"),
        ({"height": 8}, "height: got 8; allowed: 16..2048"),
        ({"width": 4096}, "width: got 4096"),
        ({"train_size": -1}, "train_size: got -1"),
        ({"num_frames": 0}, "num_frames: got 0"),
        ({"max_objects": 0}, "max_objects: got 0"),
        ({"min_radius": 0.5, "max_radius": 0.2}, "min_radius: got 0.5"),
        ({"seed": -1}, "seed: got -1"),
        ({"colour": 1}, "builder_kwargs: got 'colour'; allowed: kind, labels, height"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        ts.config_for("images", overrides)


def test_unknown_base_and_split():
    with pytest.raises(ValueError, match="toy_scenes config: got 'movies'; allowed: images"):
        ts.config_for("movies")
    with pytest.raises(ValueError, match="toy_scenes split: got 'val'"):
        ts.example(ts.config_for("images"), "val", 0)


def test_builder_writes_exactly_the_generated_examples(tmp_path):
    cfg = ts.config_for("images", {**SMALL, "train_size": 6, "validation_size": 3, "test_size": 0})
    builder = tfds.builder("toy_scenes", config=cfg, data_dir=tmp_path)
    builder.download_and_prepare()
    assert set(builder.info.splits) == {"train", "validation"}
    assert builder.info.splits["train"].num_examples == 6
    assert builder.info.metadata["num_classes"] == 5
    stored = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1))
    generated = [ts.example(cfg, "train", i) for i in range(6)]
    # tfds orders examples by a hash of their key: match them by content
    for g in generated:
        assert sum(np.array_equal(g["image"], s) for s in stored["image"]) == 1
    assert stored["image"].dtype == np.uint8 and stored["segmentation_mask"].shape == (6, 32, 32, 1)


def test_video_clips_move_and_flag_one_frame():
    cfg = ts.config_for("video", {**SMALL, "num_frames": 6})
    entered_or_left, moved = 0, 0
    for i in range(30):
        e = ts.example(cfg, "train", i)
        assert e["video"].shape == (6, 32, 32, 3) and e["segmentation_mask"].shape == (6, 32, 32, 1)
        np.testing.assert_array_equal(e["labelled"], [False] * 4 + [True, False])
        masks = e["segmentation_mask"][..., 0]
        moved += not np.array_equal(masks[0], masks[-1])
        counts = np.array([[np.count_nonzero(m == c) for c in range(1, 5)] for m in masks])
        entered_or_left += np.any((counts[0] == 0) != (counts[-1] == 0))
    assert moved >= 27  # a clip may have every object out of frame at both ends
    assert entered_or_left >= 3  # objects enter and leave the frame


def test_video_builder_features(tmp_path):
    cfg = ts.config_for(
        "video", {**SMALL, "num_frames": 4, "train_size": 2, "validation_size": 1, "test_size": 1}
    )
    builder = tfds.builder("toy_scenes", config=cfg, data_dir=tmp_path)
    builder.download_and_prepare()
    ex = next(iter(tfds.as_numpy(builder.as_dataset(split="test"))))
    np.testing.assert_array_equal(ex["video"], ts.example(cfg, "test", 0)["video"])
    assert ex["labelled"].tolist() == [False, False, True, False]
    assert dataclasses.asdict(cfg)["kind"] == "video"
