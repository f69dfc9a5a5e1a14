"""Bring your own data: a folder of images + PNG masks (or video frames + sparse masks) -> tfds.

The short path uses `tfds.dataset_builders.store_as_tfds_dataset`, so there is no builder
class to write. Folder layouts (split folder names become split names; use `train` and
`validation` to match the default config):

    images:  ROOT/<split>/images/<key>.{jpg,jpeg,png}   ROOT/<split>/masks/<key>.png
    videos:  ROOT/<split>/<video>/frames/<frame>.{jpg,png}  (sorted by name)
             ROOT/<split>/<video>/masks/<frame>.png        (only the labelled frames)

Masks are single-channel PNGs of class ids (0..num_classes-1; 255 = ignore). The stored
dataset lives in `OUT_DIR/<name>/<version>`; train on it with `data.name = "<name>"` and
`data.data_dir = "OUT_DIR"`. From the shell:

    segnas data store ROOT --name my_seg --out OUT_DIR [--video] [--num-classes N]

Videos become clips with a dense `(T, H, W)` mask (255 on unlabelled frames) and a
`labelled` (T,) flag, so sparse labels need no special handling downstream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from data.ops import Example
from data.sources import Source, default_data_dir
from nas.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _max_label(masks: list[Path]) -> int:
    top = 0
    for m in masks:
        values = np.unique(np.asarray(Image.open(m)))
        values = values[values != 255]
        top = max(top, int(values.max()) if len(values) else 0)
    return top


def _splits(root: Path) -> list[Path]:
    if not root.is_dir():
        raise UserError(
            f"root: {str(root)!r} is not a folder; allowed: a folder of split "
            "folders (train/, validation/, ...)"
        )
    splits = sorted(p for p in root.iterdir() if p.is_dir())
    if not splits:
        raise UserError(
            f"root: {str(root)!r} has no split folders; allowed: train/, "
            "validation/, ... (see data/own.py)"
        )
    return splits


def _image_examples(split: Path) -> list[tuple[str, dict[str, str]]]:
    if not (split / "images").is_dir() or not (split / "masks").is_dir():
        raise UserError(
            f"root: {str(split)!r} lacks images/ and masks/; allowed: "
            "<split>/images/<key>.jpg with <split>/masks/<key>.png"
        )
    out = []
    for image in _images(split / "images"):
        mask = split / "masks" / f"{image.stem}.png"
        if not mask.exists():
            raise UserError(
                f"masks: no {str(mask)!r} for image {str(image)!r}; allowed: one "
                "PNG mask per image, same name"
            )
        out.append((image.stem, {"image": str(image), "segmentation_mask": str(mask)}))
    return out


def _video_examples(split: Path) -> list[tuple[str, dict[str, object]]]:
    out = []
    for video in sorted(p for p in split.iterdir() if p.is_dir()):
        if not (video / "frames").is_dir():
            raise UserError(
                f"root: {str(video)!r} lacks frames/; allowed: "
                "<split>/<video>/frames/*.jpg and <split>/<video>/masks/*.png"
            )
        frames = _images(video / "frames")
        masks_dir = video / "masks"
        labelled = [i for i, f in enumerate(frames) if (masks_dir / f"{f.stem}.png").exists()]
        out.append(
            (
                video.name,
                {
                    "video": [str(f) for f in frames],
                    "masks": [str(masks_dir / f"{frames[i].stem}.png") for i in labelled],
                    "mask_frame_index": np.asarray(labelled, np.int32),
                    "video_name": video.name,
                },
            )
        )
    return out


def store_folder(
    root: str | Path,
    name: str,
    out_dir: str | Path,
    *,
    video: bool = False,
    num_classes: int | None = None,
    version: str = "1.0.0",
) -> Path:
    """Store ROOT (layout in the module docstring) as tfds dataset `name` under `out_dir`.

    `num_classes` defaults to the largest mask value (255 excluded) + 1. Returns the stored
    dataset's folder (`out_dir/name/version`).
    """
    root = Path(root)
    split_dirs = _splits(root)
    examples = {s.name: (_video_examples(s) if video else _image_examples(s)) for s in split_dirs}
    mask_files = [
        Path(m)
        for ex in examples.values()
        for _, e in ex
        for m in (e["masks"] if video else [e["segmentation_mask"]])
    ]
    if num_classes is None:
        num_classes = _max_label(mask_files) + 1
    if not 1 <= num_classes <= 255:
        raise UserError(f"num_classes: got {num_classes!r}; allowed: 1..255")
    label = tfds.features.LabeledImage(labels=num_classes, shape=(None, None, 1))
    if video:
        features = tfds.features.FeaturesDict(
            {
                "video": tfds.features.Video(shape=(None, None, None, 3)),
                "masks": tfds.features.Sequence(label),
                "mask_frame_index": tfds.features.Sequence(np.int32),
                "video_name": tfds.features.Text(),
            }
        )
    else:
        features = tfds.features.FeaturesDict(
            {"image": tfds.features.Image(shape=(None, None, 3)), "segmentation_mask": label}
        )
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=version,
        features=features,
        data_dir=str(out_dir),
        split_datasets=examples,
        description=f"Stored by segnas from {root}.",
    )
    return Path(out_dir) / name / version


def is_video(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether the stored dataset holds video clips (a `video` feature) rather than images."""
    return "video" in builder.info.features


def num_classes(builder: tfds.core.DatasetBuilder, override: int | None) -> int:
    """`override` if given, else the classes recorded in the stored mask feature."""
    if override is not None:
        return int(override)
    feature = builder.info.features["masks" if is_video(builder) else "segmentation_mask"]
    feature = getattr(feature, "feature", feature)  # Sequence(LabeledImage) for videos
    if not hasattr(feature, "num_classes"):
        raise UserError(
            f"data.num_classes: {builder.name!r} does not record its classes; "
            "allowed: set data.num_classes"
        )
    return int(feature.num_classes)


def builder(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
    """The tfds builder of dataset `name`, looked up in `data_dir` (None: tfds' default)."""
    return tfds.builder(name, data_dir=data_dir)


def missing_message(name: str, data_dir: str | None) -> str:
    """The error text for a `name` neither known to tfds nor stored in `data_dir`."""
    return (
        f"data.name: got {name!r}, which is neither a known dataset nor stored in "
        f"data_dir={data_dir or '~/tensorflow_datasets'}; allowed: toy_scenes/images, "
        "toy_scenes/binary, toy_scenes/video, cityscapes/semantic_segmentation, ade20k, "
        "oxford_iiit_pet, davis/480p, or your own folder stored with: segnas data store "
        f"ROOT --name {name} --out DIR (then data.data_dir=DIR)"
    )


def _decode(x: tf.Tensor, channels: int) -> tf.Tensor:
    if x.dtype == tf.string:
        return tf.io.decode_image(x, channels=channels, expand_animations=False)
    return x


def to_example(raw: dict[str, tf.Tensor]) -> Example:
    """A stored example -> {"image", "mask"} (videos: a dense clip plus `labelled`)."""
    if "video" not in raw:
        return {
            "image": _decode(raw["image"], 3),
            "mask": _decode(raw["segmentation_mask"], 1)[..., 0],
        }
    frames = raw["video"]
    shape = tf.shape(frames)
    index = tf.cast(raw["mask_frame_index"], tf.int32)[:, None]
    masks = tf.cast(raw["masks"][..., 0], tf.uint8)
    dense = tf.tensor_scatter_nd_update(
        tf.fill(shape[:3], tf.constant(255, tf.uint8)), index, masks
    )
    labelled = tf.scatter_nd(index, tf.ones(tf.shape(index)[:1], tf.bool), shape[:1])
    return {"image": frames, "mask": dense, "labelled": labelled}


@dataclasses.dataclass(frozen=True, eq=False)
class FolderSource(Source):
    """Own folders for `data.pipeline`: any name no other source claims, a tfds dataset
    stored under `data_dir` with `segnas data store`; classes and video-ness are read from
    its stored features. `others` (the named datasets) is listed when `prepare` refuses."""

    others: tuple[str, ...] = ()

    def missing_message(self, name: str, data_dir: str | None) -> str:
        """`name` is neither a known dataset nor stored: how to store a folder under it."""
        return missing_message(name, default_data_dir(data_dir))

    def prepare(
        self,
        name: str,
        data_dir: str | None,
        manual_dir: str | None,
        builder_kwargs: Mapping[str, Any] | None,
    ) -> str:
        """Always a UserError: own folders are stored, not prepared."""
        raise UserError(
            f"name: got {name!r}; own folders are stored with `segnas data store`, not "
            "prepared; allowed: " + ", ".join(self.others)
        )

    def num_classes(self, builder: tfds.core.DatasetBuilder, override: int | None) -> int:
        """`override` (data.num_classes) if given, else the stored mask feature's classes."""
        return num_classes(builder, override)

    def is_video(self, builder: tfds.core.DatasetBuilder) -> bool:
        """Whether the stored dataset holds clips (a `video` feature)."""
        return is_video(builder)


SOURCE = FolderSource(
    names=(),  # any name: the pipeline's fallback
    to_example=to_example,
    decoders=None,  # keys differ between image and video datasets; tfds decodes everything
)
