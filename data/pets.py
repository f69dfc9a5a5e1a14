"""Oxford-IIIT Pet through tfds' `oxford_iiit_pet`: trimap -> foreground / background.

The trimap holds 1 = pet, 2 = background, 3 = border (not 0-based); segnas maps pet -> 1,
background -> 0 and the uncertain border band -> 255 = ignore, the usual binary setup
(2 classes, like seed 000's person segmentation). Images vary in size, so the defaults resize.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data.ops import Example
from data.sources import Source

CLASS_NAMES = ("background", "pet")
# The builder downloads two archives; with them in a manual_dir, tfds uses them (known checksums)
GET = {
    "oxford_iiit_pet": "download images.tar.gz and annotations.tar.gz from "
    "https://www.robots.ox.ac.uk/~vgg/data/pets/"
}


def trimap_table() -> np.ndarray:
    """(256,) uint8: trimap value -> 0 background, 1 pet, 255 border / anything else."""
    table = np.full(256, 255, np.uint8)
    table[1], table[2] = 1, 0
    return table


def to_example(raw: dict[str, tf.Tensor]) -> Example:
    """An oxford_iiit_pet tfds example (encoded or decoded) -> {"image", "mask"}."""
    image, trimap = raw["image"], raw["segmentation_mask"]
    if image.dtype == tf.string:
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
    if trimap.dtype == tf.string:
        trimap = tf.io.decode_png(trimap, channels=1)
    mask = tf.gather(tf.constant(trimap_table()), tf.cast(trimap[..., 0], tf.int32))
    return {"image": image, "mask": mask}


SOURCE = Source(
    names=tuple(GET),
    to_example=to_example,
    classes=CLASS_NAMES,
    eval_split="test",
    preprocess_train=(
        "resize(288, 288) | random_scale(0.75, 1.25, 0.25) | random_crop(256, 256)"
        " | random_flip | photometric | normalize(-1, 1)"
    ),
    preprocess_eval="resize(256, 256) | normalize(-1, 1)",
    decoders={
        "image": tfds.decode.SkipDecoding(),
        "segmentation_mask": tfds.decode.SkipDecoding(),
    },
    get=GET,
    manual=True,
)
