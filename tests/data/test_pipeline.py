"""data.pipeline on tiny toy_scenes: exact content, determinism, resume, shares, padding, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from data import ops, pipeline
from nas.errors import UserError

AUG = "random_scale(0.5, 2.0, 0.25) | random_crop(32, 32) | random_flip | photometric | normalize"


def _raw(cfg, split: str) -> dict[str, np.ndarray]:
    return pipeline._materialise(pipeline._builder(cfg), split, pipeline.toy_scenes.SOURCE)


def _take(it, n: int) -> list[dict[str, np.ndarray]]:
    return [next(it) for _ in range(n)]


def _equal(a: list[dict], b: list[dict]) -> bool:
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b, strict=False) for k in x)


def test_default_configs_parse_for_every_dataset():
    for source in pipeline.SOURCES:
        for name in source.names:
            cfg = pipeline.default_data_config(name)
            assert cfg.name == name and cfg.data_dir is None and cfg.in_memory is None
            for field in ("preprocess_train", "preprocess_eval"):
                ops.parse(cfg[field])
    toy = pipeline.default_data_config()
    assert toy.name == "toy_scenes/images" and toy.builder_kwargs.height == 64
    assert toy.builder_kwargs.train_size == 2000 and toy.eval_split == "validation"
    assert dict(pipeline.default_data_config("ade20k").builder_kwargs) == {}


def test_dataset_info(toy_cfg):
    info = pipeline.dataset_info(toy_cfg)
    assert info == pipeline.DatasetInfo(
        num_classes=5,
        ignore_index=255,
        image_shape=(32, 32),
        is_video=False,
        eval_image_shape=(32, 32),
        num_frames=None,
        class_names=("background", "disk", "square", "triangle", "ring"),
        train_size=20,
        eval_size=7,
        image_size=(32, 32),
    )
    toy_cfg.preprocess_train = "random_scale | random_crop(24, 16) | normalize"
    info = pipeline.dataset_info(toy_cfg)
    # the batches' size follows the chain; the stored images' does not
    assert info.image_shape == (24, 16) and info.image_size == (32, 32)


def test_toy_scenes_at_96x96_through_the_experiment_helper(toy_dir):
    from experiments.common import data_section

    cfg = data_section(
        "toy_scenes/binary", height=96, width=96, train_size=2, validation_size=1, test_size=0
    )
    cfg.data_dir = toy_dir
    info = pipeline.dataset_info(cfg)
    assert info.image_size == (96, 96) and info.image_shape == (96, 96)
    assert info.num_classes == 2 and info.train_size == 2
    batch = next(pipeline.eval_batches(cfg, 1))
    assert batch["image"].shape == (1, 96, 96, 3) and batch["mask"].shape == (1, 96, 96)


def test_image_size_is_none_when_stored_sizes_vary(toy_cfg, monkeypatch):
    source = pipeline.find_source(toy_cfg.name)
    monkeypatch.setattr(type(source), "raw_hw", lambda self, builder: None)
    info = pipeline.dataset_info(toy_cfg)
    # without a stored size, only a chain ending in a fixed size knows its output's
    assert info.image_size is None and info.image_shape is None


def test_train_batches_walk_each_epoch_once_with_exact_pixels(toy_cfg):
    raw = _raw(toy_cfg, "train")
    batches = _take(pipeline.train_batches(toy_cfg, 5, seed=0), 8)  # two epochs of 20
    b = batches[0]
    assert b["image"].shape == (5, 32, 32, 3) and b["image"].dtype == np.float32
    assert b["mask"].shape == (5, 32, 32) and b["mask"].dtype == np.int32
    for epoch in (batches[:4], batches[4:]):
        masks = np.concatenate([x["mask"] for x in epoch])
        images = np.concatenate([x["image"] for x in epoch])
        index = [int(np.flatnonzero([np.array_equal(m, r) for r in raw["mask"]])[0]) for m in masks]
        assert sorted(index) == list(range(20))
        np.testing.assert_allclose(images, raw["image"][index] / 127.5 - 1.0, atol=1e-6)
    assert not _equal(batches[:4], batches[4:])  # a fresh permutation per epoch


def test_train_batches_deterministic_resumable_seeded(toy_cfg):
    toy_cfg.preprocess_train = AUG
    first = _take(pipeline.train_batches(toy_cfg, 4, seed=7), 6)
    again = _take(pipeline.train_batches(toy_cfg, 4, seed=7), 6)
    resumed = _take(pipeline.train_batches(toy_cfg, 4, seed=7, start_step=4), 2)
    other = _take(pipeline.train_batches(toy_cfg, 4, seed=8), 1)
    assert _equal(first, again)
    assert _equal(first[4:], resumed)
    assert not _equal(first[:1], other)
    assert first[0]["image"].min() >= -1.0 and first[0]["image"].max() <= 1.0
    assert set(np.unique(first[0]["mask"])) <= {0, 1, 2, 3, 4, 255}


def test_process_shares_split_the_global_batch(toy_cfg):
    toy_cfg.preprocess_train = AUG
    whole = _take(pipeline.train_batches(toy_cfg, 6, seed=3, start_step=2), 2)
    parts = [
        _take(
            pipeline.train_batches(
                toy_cfg, 3, seed=3, start_step=2, process_index=p, process_count=2
            ),
            2,
        )
        for p in (0, 1)
    ]
    for k in range(2):
        for key in ("image", "mask"):
            np.testing.assert_array_equal(
                whole[k][key], np.concatenate([parts[0][k][key], parts[1][k][key]])
            )


def test_eval_batches_fixed_order_and_padding(toy_cfg):
    raw = _raw(toy_cfg, "validation")
    batches = list(pipeline.eval_batches(toy_cfg, 3))
    assert len(batches) == 3
    images = np.concatenate([b["image"] for b in batches])
    masks = np.concatenate([b["mask"] for b in batches])
    np.testing.assert_allclose(images[:7], raw["image"] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(masks[:7], raw["mask"])
    assert (masks[7:] == 255).all() and (images[7:] == 0).all()
    assert _equal(batches, list(pipeline.eval_batches(toy_cfg, 3)))


def test_eval_shares_have_equal_batch_counts(toy_cfg):
    raw = _raw(toy_cfg, "validation")
    shares = [
        list(pipeline.eval_batches(toy_cfg, 3, process_index=p, process_count=2)) for p in (0, 1)
    ]
    assert [len(s) for s in shares] == [2, 2]  # 4 and 3 examples, 3 per batch
    seen = []
    for share in shares:
        for b in share:
            for m in b["mask"]:
                if not (m == 255).all():
                    seen.append(int(np.flatnonzero([np.array_equal(m, r) for r in raw["mask"]])[0]))
    assert sorted(seen) == list(range(7))
    assert (shares[1][1]["mask"] == 255).all()  # process 1 ran out: a whole padding batch


def test_unknown_split(toy_cfg):
    with pytest.raises(UserError, match="data split: got 'test': Unknown split 'test'"):
        list(pipeline.eval_batches(toy_cfg, 2, split="test"))
    toy_cfg.in_memory = False
    with pytest.raises(UserError, match="Unknown split 'tarin'"):
        toy_cfg.train_split = "tarin"
        next(pipeline.train_batches(toy_cfg, 2, seed=0))


def test_video_batches(toy_dir):
    cfg = pipeline.default_data_config("toy_scenes/video")
    cfg.data_dir = toy_dir
    cfg.builder_kwargs.update(
        height=32, width=32, num_frames=4, train_size=6, validation_size=3, test_size=0
    )
    info = pipeline.dataset_info(cfg)
    assert info.is_video and info.num_frames == 4 and info.num_classes == 5
    b = next(pipeline.train_batches(cfg, 2, seed=0))
    assert b["image"].shape == (2, 4, 32, 32, 3) and b["mask"].shape == (2, 4, 32, 32)
    np.testing.assert_array_equal(b["labelled"], [[False, False, True, False]] * 2)
    cfg.preprocess_train = "random_temporal_crop(2) | random_flip | normalize"
    assert pipeline.dataset_info(cfg).num_frames == 2
    b = next(pipeline.train_batches(cfg, 2, seed=0))
    assert b["image"].shape == (2, 2, 32, 32, 3) and b["labelled"].shape == (2, 2)
    last = list(pipeline.eval_batches(cfg, 2))[-1]
    assert (last["mask"][1] == 255).all() and not last["labelled"][1].any()


def test_streaming_path_is_deterministic_and_resumable(toy_cfg):
    toy_cfg.in_memory = False
    toy_cfg.preprocess_train = AUG
    first = _take(pipeline.train_batches(toy_cfg, 4, seed=1), 7)
    assert _equal(first, _take(pipeline.train_batches(toy_cfg, 4, seed=1), 7))
    assert _equal(first[5:], _take(pipeline.train_batches(toy_cfg, 4, seed=1, start_step=5), 2))
    assert first[0]["image"].shape == (4, 32, 32, 3) and first[0]["mask"].dtype == np.int32
    batches = list(pipeline.eval_batches(toy_cfg, 3))
    assert len(batches) == 3 and (batches[-1]["mask"][1:] == 255).all()
    shares = [
        list(pipeline.eval_batches(toy_cfg, 3, process_index=p, process_count=2)) for p in (0, 1)
    ]
    assert [len(s) for s in shares] == [2, 2]
    assert sum(int((b["mask"] != 255).any(axis=(1, 2)).sum()) for s in shares for b in s) == 7


def test_prepare_toy(toy_dir):
    path = pipeline.prepare(
        "toy_scenes/binary",
        data_dir=toy_dir,
        builder_kwargs={
            "height": 16,
            "width": 16,
            "train_size": 2,
            "validation_size": 1,
            "test_size": 0,
        },
    )
    assert "toy_scenes/binary_" in path and path.endswith("/1.1.0")
    with pytest.raises(UserError, match="own folders are stored with `segnas data store`"):
        pipeline.prepare("my_folder")


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"name": "toy_scenes/colour"},
            "data.name: got 'toy_scenes/colour'; allowed: toy_scenes/images, toy_scenes/binary",
        ),
        ({"name": "cityscapes/stereo_disparity"}, "allowed: cityscapes/semantic_segmentation"),
        ({"name": "scene_parse150"}, "instance annotations .* allowed: 'ade20k'"),
        (
            {"name": "cityscapes/semantic_segmentation_extra"},
            r"whose splits all carry coarse labels .* allowed: cityscapes/semantic_segmentation$",
        ),
        (
            {"name": "no_such_set", "builder_kwargs": {}},
            "neither a known dataset nor stored in data_dir=.*segnas data store ROOT --name "
            "no_such_set",
        ),
        ({"name": "ade20k", "builder_kwargs": {"height": 3}}, "only toy_scenes takes"),
        (
            {"builder_kwargs": {"colour": 3}},
            "data.builder_kwargs: toy_scenes builder_kwargs: got 'colour'",
        ),
        ({"builder_kwargs": {"height": 3}}, "data.builder_kwargs: toy_scenes height: got 3"),
        (
            {"preprocess_train": "blur | normalize"},
            "data.preprocess_train: preprocess op: got 'blur'",
        ),
        ({"preprocess_train": "random_scale | normalize"}, "output size varies per example"),
    ],
)
def test_config_errors(toy_cfg, changes, message):
    for k, v in changes.items():
        toy_cfg[k] = v
    t = time.time()
    with pytest.raises(UserError, match=message):
        next(pipeline.train_batches(toy_cfg, 2, seed=0))
    assert time.time() - t < 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size: got 0; allowed: >= 1"),
        ({"process_index": 2, "process_count": 2}, "process_index: got 2 of 2"),
        ({"process_index": 0, "process_count": 0}, "process_index: got 0 of 0"),
        ({"start_step": -1}, "start_step: got -1"),
    ],
)
def test_argument_errors(toy_cfg, kwargs, message):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(UserError, match=message):
        pipeline.train_batches(toy_cfg, seed=0, **kwargs)
    if "start_step" not in kwargs:
        with pytest.raises(UserError, match=message):
            pipeline.eval_batches(toy_cfg, **kwargs)


def test_concurrent_generation_reads_the_winner(toy_cfg, monkeypatch):
    # Two processes generating the same config: the loser's final rename raises
    # FileExistsError; the pipeline then reads the winner's identical copy.
    original = pipeline.toy_scenes.ToyScenes.download_and_prepare

    def lose_the_race(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise FileExistsError("Destination ... already exists.")

    monkeypatch.setattr(pipeline.toy_scenes.ToyScenes, "download_and_prepare", lose_the_race)
    toy_cfg.builder_kwargs.update(train_size=3, validation_size=1)
    assert pipeline.dataset_info(toy_cfg).train_size == 3
