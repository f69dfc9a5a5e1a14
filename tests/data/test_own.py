"""data.own: a user's folder of images + masks, and of video frames + sparse masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import own, pipeline
from nas.errors import UserError


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def _mask(i: int) -> np.ndarray:
    m = np.zeros((12, 16), np.uint8)
    m[2:8, 3 + i : 9 + i] = 1 + i % 3  # classes 1..3
    m[0, :] = 255  # an ignored row
    return m


def _image_folder(root: Path) -> None:
    for split, n in (("train", 3), ("validation", 2)):
        for i in range(n):
            _save(root / split / "images" / f"im{i}.png", np.full((12, 16, 3), 20 * i))
            _save(root / split / "masks" / f"im{i}.png", _mask(i))


def test_store_images_and_train_on_them(tmp_path):
    _image_folder(tmp_path / "mine")
    path = own.store_folder(tmp_path / "mine", "my_seg", tmp_path / "out")
    assert path == tmp_path / "out" / "my_seg" / "1.0.0" and path.is_dir()
    cfg = pipeline.default_data_config("my_seg")
    cfg.data_dir = str(tmp_path / "out")
    info = pipeline.dataset_info(cfg)
    assert info.num_classes == 4 and not info.is_video  # largest value 3 (255 excluded) + 1
    assert (info.train_size, info.eval_size) == (3, 2)
    batches = list(pipeline.eval_batches(cfg, 2))
    assert len(batches) == 1
    masks = sorted(batches[0]["mask"], key=lambda m: int(m[2, 3:].argmax()))
    np.testing.assert_array_equal(masks, [_mask(0), _mask(1)])
    train = next(pipeline.train_batches(cfg, 4, seed=0))
    assert train["image"].shape == (4, 12, 16, 3) and train["mask"].dtype == np.int32
    cfg.num_classes = 7  # an explicit count wins
    assert pipeline.dataset_info(cfg).num_classes == 7


def test_store_sparse_video(tmp_path):
    clip = tmp_path / "clips" / "train" / "walk"
    for i in range(5):
        _save(clip / "frames" / f"{i:03d}.jpg", np.full((8, 10, 3), 50 * i))
    for i in (1, 3):
        _save(clip / "masks" / f"{i:03d}.png", np.full((8, 10), i % 2))
    own.store_folder(tmp_path / "clips", "my_clips", tmp_path / "out", video=True, num_classes=2)
    cfg = pipeline.default_data_config("my_clips")
    cfg.data_dir = str(tmp_path / "out")
    cfg.eval_split = "train"
    info = pipeline.dataset_info(cfg)
    assert info.is_video and info.num_classes == 2
    (batch,) = list(pipeline.eval_batches(cfg, 1))
    assert batch["image"].shape == (1, 5, 8, 10, 3)
    np.testing.assert_array_equal(batch["labelled"][0], [False, True, False, True, False])
    np.testing.assert_array_equal(batch["mask"][0, :, 0, 0], [255, 1, 255, 1, 255])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: None, "is not a folder"),
        (lambda r: r.mkdir(), "has no split folders"),
        (lambda r: (r / "train").mkdir(parents=True), "lacks images/ and masks/"),
        (
            lambda r: (
                _save(r / "train" / "images" / "a.png", np.zeros((4, 4, 3))),
                (r / "train" / "masks").mkdir(),
            ),
            "masks: no .*a.png",
        ),
    ],
)
def test_store_folder_errors(tmp_path, make, message):
    make(tmp_path / "root")
    with pytest.raises(UserError, match=message):
        own.store_folder(tmp_path / "root", "x", tmp_path / "out")


def test_store_errors_video_and_classes(tmp_path):
    (tmp_path / "v" / "train" / "clip").mkdir(parents=True)
    with pytest.raises(UserError, match="lacks frames/"):
        own.store_folder(tmp_path / "v", "x", tmp_path / "out", video=True)
    _image_folder(tmp_path / "mine")
    with pytest.raises(UserError, match="num_classes: got 300; allowed: 1..255"):
        own.store_folder(tmp_path / "mine", "x", tmp_path / "out", num_classes=300)


def test_differing_sizes_need_a_resize(tmp_path):
    _image_folder(tmp_path / "mine")
    _save(tmp_path / "mine" / "validation" / "images" / "im1.png", np.zeros((10, 16, 3)))
    _save(tmp_path / "mine" / "validation" / "masks" / "im1.png", np.zeros((10, 16)))
    own.store_folder(tmp_path / "mine", "mixed", tmp_path / "out")
    cfg = pipeline.default_data_config("mixed")
    cfg.data_dir = str(tmp_path / "out")
    with pytest.raises(UserError, match="data.preprocess_eval: .*end it with resize"):
        list(pipeline.eval_batches(cfg, 2))
    cfg.preprocess_eval = "resize(8, 8) | normalize"
    assert list(pipeline.eval_batches(cfg, 2))[0]["image"].shape == (2, 8, 8, 3)
