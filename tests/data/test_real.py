"""Real dataset builders end to end on tiny fake raw files, and fast failures when missing.

Each test writes a few files in the layout the tfds builder reads (the manual download
folders those builders document), prepares it with `data.pipeline.prepare` (download builders
get `DownloadManager.download_and_extract` patched to return the local folders), then reads it
through `data.pipeline` to check the label mapping.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tree
from etils import epath
from PIL import Image

from data import pipeline
from nas.errors import UserError


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode).save(path)


def _zip(path: Path, root: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(root.rglob("*")):
            z.write(f, f.relative_to(root))


def _cfg(name: str, data_dir: Path, evaluation: str):
    cfg = pipeline.default_data_config(name)
    cfg.data_dir = str(data_dir)
    cfg.preprocess_eval = evaluation
    return cfg


def _fake_downloads(monkeypatch: pytest.MonkeyPatch, urls: dict[str, Path]) -> None:
    def download_and_extract(self, url_or_urls):
        return tree.map_structure(lambda u: epath.Path(urls[u.rsplit("/", 1)[-1]]), url_or_urls)

    monkeypatch.setattr(tfds.download.DownloadManager, "download_and_extract", download_and_extract)


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    raw = tmp_path / "raw"
    labels = np.zeros((1024, 2048), np.uint8)  # 0 "unlabeled" -> 255
    labels[:, :1024] = 7  # road -> 0
    labels[:512, 1024:] = 26  # car -> 13
    labels[:, 1500:1600] = 33  # bicycle -> 18
    image = np.zeros((1024, 2048, 3), np.uint8)
    image[:, :1024] = 200
    for split in ("train", "val", "test"):  # the builder reads all three
        stem = f"aachen_000000_00001{len(split)}"
        _png(raw / "img" / "leftImg8bit" / split / "aachen" / f"{stem}_leftImg8bit.png", image)
        _png(raw / "gt" / "gtFine" / split / "aachen" / f"{stem}_gtFine_labelIds.png", labels)
    zips = tmp_path / "zips"
    zips.mkdir()
    _zip(zips / "leftImg8bit_trainvaltest.zip", raw / "img")
    _zip(zips / "gtFine_trainvaltest.zip", raw / "gt")
    name = "cityscapes/semantic_segmentation"
    pipeline.prepare(name, data_dir=str(tmp_path / "tfds"), manual_dir=str(zips))
    cfg = _cfg(name, tmp_path / "tfds", "resize(64, 128) | normalize(-1, 1)")
    assert pipeline.dataset_info(cfg).num_classes == 19
    (batch,) = list(pipeline.eval_batches(cfg, 2))
    mask = batch["mask"][0]
    assert batch["image"].shape == (2, 64, 128, 3) and (batch["mask"][1] == 255).all()
    assert (mask[:, :64] == 0).all() and (mask[:32, 66:93] == 13).all()
    assert (mask[32:, 66:93] == 255).all() and (mask[:, 94:99] == 18).all()
    np.testing.assert_allclose(batch["image"][0, 0, 0], [200 / 127.5 - 1] * 3, atol=1e-6)
    cfg.preprocess_train = "random_crop(32, 32) | normalize"
    train = next(pipeline.train_batches(cfg, 1, seed=0))
    assert train["image"].shape == (1, 32, 32, 3)


def test_oxford_pets_trimap_to_foreground(tmp_path, monkeypatch):
    images, annotations = tmp_path / "images_dl", tmp_path / "annotations_dl"
    trimap = np.full((30, 40), 2, np.uint8)  # background
    trimap[5:25, 5:30] = 3  # border -> 255
    trimap[8:22, 8:27] = 1  # pet -> 1
    for name, size in (("Abyssinian_1", (30, 40)), ("beagle_2", (36, 50))):
        img = Image.fromarray(np.full(size + (3,), 90, np.uint8))
        (images / "images").mkdir(parents=True, exist_ok=True)
        img.save(images / "images" / f"{name}.jpg")
        tm = trimap if size == (30, 40) else np.full(size, 1, np.uint8)
        _png(annotations / "annotations" / "trimaps" / f"{name}.png", tm)
    (annotations / "annotations" / "xmls").mkdir()
    (annotations / "annotations" / "trainval.txt").write_text("Abyssinian_1 1 1 1\n")
    (annotations / "annotations" / "test.txt").write_text("beagle_2 5 2 1\n")
    _fake_downloads(monkeypatch, {"images.tar.gz": images, "annotations.tar.gz": annotations})
    pipeline.prepare("oxford_iiit_pet", data_dir=str(tmp_path / "tfds"))
    cfg = _cfg("oxford_iiit_pet", tmp_path / "tfds", "normalize(-1, 1)")
    cfg.eval_split = "train"
    (batch,) = list(pipeline.eval_batches(cfg, 1))
    # by hand: trimap pet (1) -> 1, background (2) -> 0, border (3) -> 255 = ignore
    want = np.zeros((30, 40), np.uint8)
    want[5:25, 5:30] = 255
    want[8:22, 8:27] = 1
    np.testing.assert_array_equal(batch["mask"][0], want)
    assert set(np.unique(batch["mask"])) == {0, 1, 255}
    cfg.in_memory = True  # the two splits' images differ in size: no single array
    cfg.eval_split = "test"
    assert list(pipeline.eval_batches(cfg, 1))[0]["mask"].shape == (1, 36, 50)
    cfg.train_split = "train+test"
    with pytest.raises(UserError, match="differ in shape.*allowed: in_memory=False"):
        pipeline.train_batches(cfg, 1, seed=0)


def test_davis_instances_to_foreground_clips(tmp_path, monkeypatch):
    root = tmp_path / "davis_dl"
    sets = root / "DAVIS" / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("bear\n")
    (sets / "val.txt").write_text("dog\n")
    seg = np.zeros((24, 32), np.uint8)
    seg[2:10, 2:10], seg[12:20, 20:30] = 1, 2  # two instances
    for video in ("bear", "dog"):
        for i in range(3):
            frame = root / "DAVIS" / "JPEGImages" / "480p" / video / f"{i:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(frame)
            palette = Image.fromarray(np.roll(seg, i, axis=1), "P")
            palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
            path = root / "DAVIS" / "Annotations" / "480p" / video / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            palette.save(path)
    _fake_downloads(monkeypatch, {"DAVIS-2017-trainval-480p.zip": root})
    pipeline.prepare("davis/480p", data_dir=str(tmp_path / "tfds"))
    cfg = _cfg("davis/480p", tmp_path / "tfds", "temporal_crop(2, start=1) | normalize")
    info = pipeline.dataset_info(cfg)
    assert info.is_video and info.num_classes == 2 and info.num_frames == 8
    (batch,) = list(pipeline.eval_batches(cfg, 1))
    assert batch["image"].shape == (1, 2, 24, 32, 3) and batch["labelled"].all()
    for t in range(2):
        np.testing.assert_array_equal(batch["mask"][0, t], np.roll(seg, t + 1, axis=1) > 0)
    cfg.preprocess_train = "random_temporal_crop(3) | resize(12, 16) | random_flip | normalize"
    train = next(pipeline.train_batches(cfg, 2, seed=0))
    assert train["mask"].shape == (2, 3, 12, 16) and set(np.unique(train["mask"])) == {0, 1}


@pytest.mark.parametrize("packed", [True, False])
def test_ade20k_project_builder_shifts_labels(tmp_path, packed):
    root = tmp_path / "raw" / "ADEChallengeData2016"
    ann = np.zeros((20, 30), np.uint8)
    ann[:, 10:20], ann[:, 20:] = 1, 150
    for folder, prefix in (("training", "ADE_train"), ("validation", "ADE_val")):
        for i in (1, 2):
            stem = f"{prefix}_{i:08d}"
            img = root / "images" / folder / f"{stem}.jpg"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((20, 30, 3), 120, np.uint8)).save(img)
            _png(root / "annotations" / folder / f"{stem}.png", ann, "L")
    manual = tmp_path / "manual"
    manual.mkdir()
    if packed:
        _zip(manual / "ADEChallengeData2016.zip", tmp_path / "raw")
    else:
        (manual / "ADEChallengeData2016").symlink_to(root)
    pipeline.prepare("ade20k", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
    cfg = _cfg("ade20k", tmp_path / "tfds", "normalize")
    info = pipeline.dataset_info(cfg)
    assert info.num_classes == 150 and len(info.class_names) == 150
    assert info.class_names[0] == "wall" and info.class_names[149] == "flag"
    assert (info.train_size, info.eval_size) == (2, 2)
    batches = list(pipeline.eval_batches(cfg, 2))
    expected = np.array([255] * 10 + [0] * 10 + [149] * 10)
    np.testing.assert_array_equal(batches[0]["mask"][:, 0], [expected, expected])


def test_ade20k_without_files_says_where(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="neither ADEChallengeData2016.zip nor"):
        pipeline.prepare(
            "ade20k", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "empty")
        )


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "cityscapes/semantic_segmentation",
            r"not prepared in data_dir=.*; download leftImg8bit_trainvaltest.zip and "
            r"gtFine_trainvaltest.zip .* into a folder MANUAL, then run: python -c \"from "
            r"data.pipeline import prepare; prepare\('cityscapes/semantic_segmentation', "
            r"data_dir='.*', manual_dir='MANUAL'\)\"",
        ),
        ("ade20k", "download ADEChallengeData2016.zip .* prepare\\('ade20k'"),
        ("oxford_iiit_pet", "images.tar.gz and annotations.tar.gz .* manual_dir='MANUAL'"),
        ("davis/480p", "machine with internet access.*then copy DIR/davis into this data_dir"),
    ],
)
def test_missing_dataset_fails_fast_with_instructions(tmp_path, name, message):
    cfg = pipeline.default_data_config(name)
    cfg.data_dir = str(tmp_path)
    t = time.time()
    with pytest.raises(UserError, match=message):
        pipeline.train_batches(cfg, 2, seed=0)
    with pytest.raises(UserError, match="not prepared"):
        pipeline.dataset_info(cfg)
    assert time.time() - t < 5


def test_label_tables():
    table = pipeline.cityscapes.label_table()
    # Cityscapes' labelId of each of the 19 trainIds (cityscapesScripts' labels.py), by hand:
    # road 7, sidewalk 8, building 11, wall 12, fence 13, pole 17, traffic light 19, traffic
    # sign 20, vegetation 21, terrain 22, sky 23, person 24, rider 25, car 26, truck 27,
    # bus 28, train 31, motorcycle 32, bicycle 33
    label_ids = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    assert [int(table[i]) for i in label_ids] == list(range(19))
    others = [i for i in range(256) if i not in label_ids]
    assert all(table[i] == 255 for i in others)  # void, rare classes, license plate: ignored
    assert pipeline.cityscapes.CLASS_NAMES[:3] == ("road", "sidewalk", "building")
    assert pipeline.cityscapes.CLASS_NAMES[18] == "bicycle"
    assert pipeline.ade20k.label_table()[[0, 1, 150, 151]].tolist() == [255, 0, 149, 255]
    assert pipeline.davis.instance_table()[[0, 1, 7, 255]].tolist() == [0, 1, 1, 255]
