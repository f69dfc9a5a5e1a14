"""DAVIS 2017 through tfds' `davis`: video clips, foreground vs background.

DAVIS masks hold per-video *instance* ids (0 = background, 1..N objects), not classes; segnas
uses them as binary video segmentation (seed 000's task): every instance -> 1, background ->
0, a 255 (never written by DAVIS 2017, kept for safety) stays ignore. Every frame is
annotated, so `labelled` is all True.

An example is a whole video (50-100 frames at 480p, sizes differ between videos); the default
pipelines cut an 8-frame window (`random_temporal_crop` / `temporal_crop`) and resize.
All frames of a video are decoded before the window is cut: simple, and cheap enough for
DAVIS' 90 videos; a longer dataset would want the window chosen before decoding.
Evaluation with the default `temporal_crop(8)` scores the first 8 frames of each video.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data.ops import Example
from data.sources import Source

CLASS_NAMES = ("background", "foreground")
# tfds downloads DAVIS itself and ships no checksums for it, so a manual_dir does not help
# (`manual=False` below): prepare where there is internet and copy the prepared folder.
GET = {
    name: (
        'prepare it on a machine with internet access: python -c "import '
        f"tensorflow_datasets as tfds; tfds.builder('{name}', data_dir='DIR')"
        '.download_and_prepare()", then copy DIR/davis into this data_dir'
    )
    for name in ("davis/480p", "davis/full_resolution")
}


def instance_table() -> np.ndarray:
    """(256,) uint8: instance id -> 1, background 0 -> 0, 255 -> 255."""
    table = np.ones(256, np.uint8)
    table[0], table[255] = 0, 255
    return table


def to_example(raw: dict[str, tf.Tensor]) -> Example:
    """A davis tfds example (encoded or decoded frames) -> a clip {"image" (T, H, W, 3),
    "mask" (T, H, W), "labelled" (T,)}."""
    frames, segs = raw["video"]["frames"], raw["video"]["segmentations"]
    if frames.dtype == tf.string:
        frames = tf.map_fn(
            lambda s: tf.io.decode_image(s, channels=3, expand_animations=False),
            frames,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
    if segs.dtype == tf.string:
        segs = tf.map_fn(
            lambda s: tf.io.decode_png(s, channels=1),
            segs,
            fn_output_signature=tf.TensorSpec([None, None, 1], tf.uint8),
        )
    mask = tf.gather(tf.constant(instance_table()), tf.cast(segs[..., 0], tf.int32))
    labelled = tf.ones(tf.shape(mask)[:1], tf.bool)
    return {"image": frames, "mask": mask, "labelled": labelled}


SOURCE = Source(
    names=tuple(GET),
    to_example=to_example,
    classes=CLASS_NAMES,
    video=True,
    preprocess_train=(
        "random_temporal_crop(8) | resize(256, 448) | random_flip | photometric | normalize(-1, 1)"
    ),
    preprocess_eval="temporal_crop(8) | resize(256, 448) | normalize(-1, 1)",
    decoders={
        "video": {
            "frames": tfds.decode.SkipDecoding(),
            "segmentations": tfds.decode.SkipDecoding(),
        }
    },
    get=GET,
    manual=False,
)
