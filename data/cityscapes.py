"""Cityscapes through tfds' `cityscapes` builder: labelIds -> the 19 evaluation trainIds.

tfds stores Cityscapes' `gtFine_labelIds` (0..33); the benchmark scores 19 classes. Every
other labelId (void, rare and license-plate classes) maps to 255 = ignore, through a
256-entry lookup table applied in the input pipeline.
The data needs a login, so preparing is manual (`missing_message` says how).

`cityscapes/semantic_segmentation_extra` is refused: tfds' config pairs *every* split with the
coarse labels, so its `train` split trains on coarse labels of the fine images (not the 20k
`train_extra` images) and its `validation` split scores coarse labels, which is not the
benchmark; training on `train_extra` with fine-label evaluation needs a builder segnas does not
have yet.

Default preprocessing follows seed 002 for Cityscapes: random scale 0.125..1.5, crop
512x1024, flip, photometric distortion; evaluation resizes to 512x1024 (masks nearest), so
evaluation mIoU is measured at that resolution.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data.ops import Example
from data.sources import Source

NUM_CLASSES = 19
CLASS_NAMES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# labelId of each trainId, in trainId order
TRAIN_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)


def label_table() -> np.ndarray:
    """(256,) uint8: labelId -> trainId, 255 for every id that is not evaluated."""
    table = np.full(256, 255, np.uint8)
    table[list(TRAIN_LABEL_IDS)] = np.arange(NUM_CLASSES, dtype=np.uint8)
    return table


def to_example(raw: dict[str, tf.Tensor]) -> Example:
    """A cityscapes tfds example (PNG bytes or decoded) -> {"image", "mask" (trainIds)}."""
    image, label = raw["image_left"], raw["segmentation_label"]
    if image.dtype == tf.string:
        image = tf.io.decode_png(image, channels=3)
    if label.dtype == tf.string:
        label = tf.io.decode_png(label, channels=1)
    mask = tf.gather(tf.constant(label_table()), tf.cast(label[..., 0], tf.int32))
    return {"image": image, "mask": mask}


# how to obtain the files (`Source.missing_message` adds where to put them and how to prepare)
GET = {
    "cityscapes/semantic_segmentation": (
        "download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip from "
        "https://www.cityscapes-dataset.com (needs a login)"
    ),
}
REFUSED = {
    "cityscapes/semantic_segmentation_extra": (
        "data.name: got 'cityscapes/semantic_segmentation_extra', whose splits all carry "
        "coarse labels (training on the fine images' coarse labels, scoring coarse validation "
        "labels: not the benchmark); allowed: cityscapes/semantic_segmentation"
    ),
}
SOURCE = Source(
    names=tuple(GET),
    to_example=to_example,
    classes=CLASS_NAMES,
    preprocess_train=(
        "random_scale(0.125, 1.5, 0.125) | random_crop(512, 1024) | random_flip | "
        "photometric | normalize(-1, 1)"
    ),
    preprocess_eval="resize(512, 1024) | normalize(-1, 1)",
    # decode after skipping records (resume) and only the features used
    decoders={
        "image_left": tfds.decode.SkipDecoding(),
        "segmentation_label": tfds.decode.SkipDecoding(),
    },
    get=GET,
    manual=True,
    refused=REFUSED,
)
