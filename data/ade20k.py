"""ADE20K (SceneParsing, 150 classes) through segnas' own tfds builder `ade20k`.

Why not tfds' `scene_parse150`: despite its name, it downloads the 2017 *instance*
annotations (`annotations_instance.tar`, 3-channel PNGs of the Places instance challenge:
category of ~100 "thing" classes in one channel, instance id in another), not the
single-channel semantic maps of the 150-class benchmark that seed 002 reports on. So segnas
ships a small manual-download builder over the benchmark's `ADEChallengeData2016.zip`
(`images/{training,validation}/*.jpg`, `annotations/{training,validation}/*.png`, values
0..150 with 0 = "other"), and the name `scene_parse150` in a data config is refused with a
message pointing here.

Labels: value k in 1..150 -> class k - 1; 0 ("other", not scored by the benchmark) -> 255.
Splits: train (20,210 images) and validation (2,000). Default preprocessing follows seed
002: random scale 0.5..2.0, crop 512x512, flip, photometric distortion; evaluation resizes to
512x512 (masks nearest), so validation mIoU is measured at that resolution.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from etils import epath

from data.ops import Example
from data.sources import Source

NUM_CLASSES = 150
CLASS_NAMES = (
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
)
ZIP = "ADEChallengeData2016.zip"
GET = {
    "ade20k": f"download {ZIP} from http://sceneparsing.csail.mit.edu (or its extracted "
    "ADEChallengeData2016/ folder)"
}
SCENE_PARSE150_MESSAGE = (
    "data.name: got 'scene_parse150', whose tfds builder holds ADE20K's instance annotations "
    "(3-channel, ~100 thing classes), not the 150-class semantic maps; allowed: 'ade20k' "
    f"(segnas' builder over {ZIP}, see data/ade20k.py)"
)


def label_table() -> np.ndarray:
    """(256,) uint8: 0 -> 255 (ignore), k -> k - 1 for k in 1..150, above 150 -> 255."""
    table = np.full(256, 255, np.uint8)
    table[1 : NUM_CLASSES + 1] = np.arange(NUM_CLASSES, dtype=np.uint8)
    return table


def to_example(raw: dict[str, tf.Tensor]) -> Example:
    """An ade20k tfds example (encoded or decoded) -> {"image", "mask" (0..149, 255)}."""
    image, label = raw["image"], raw["segmentation_mask"]
    if image.dtype == tf.string:
        image = tf.io.decode_image(image, channels=3, expand_animations=False)
    if label.dtype == tf.string:
        label = tf.io.decode_png(label, channels=1)
    mask = tf.gather(tf.constant(label_table()), tf.cast(label[..., 0], tf.int32))
    return {"image": image, "mask": mask}


SOURCE = Source(
    names=tuple(GET),
    to_example=to_example,
    classes=CLASS_NAMES,
    preprocess_train=(
        "random_scale(0.5, 2.0, 0.25) | random_crop(512, 512) | random_flip | "
        "photometric | normalize(-1, 1)"
    ),
    preprocess_eval="resize(512, 512) | normalize(-1, 1)",
    decoders={
        "image": tfds.decode.SkipDecoding(),
        "segmentation_mask": tfds.decode.SkipDecoding(),
    },
    get=GET,
    manual=True,
    refused={"scene_parse150": SCENE_PARSE150_MESSAGE},
)


class Ade20k(tfds.core.GeneratorBasedBuilder):
    """ADE20K SceneParsing benchmark (ADEChallengeData2016), 150 semantic classes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {ZIP} (or its extracted folder) in manual_dir."

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="ADE20K SceneParsing, 150 classes (0 = other).",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                    "segmentation_mask": tfds.features.Image(
                        shape=(None, None, 1), encoding_format="png", use_colormap=True
                    ),
                    "file_name": tfds.features.Text(),
                }
            ),
            homepage="http://sceneparsing.csail.mit.edu",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Iterator]:
        manual = epath.Path(dl_manager.manual_dir)
        if (manual / ZIP).exists():
            root = epath.Path(dl_manager.extract(manual / ZIP)) / "ADEChallengeData2016"
        elif (manual / "ADEChallengeData2016").exists():
            root = manual / "ADEChallengeData2016"
        else:
            raise FileNotFoundError(
                f"ade20k: neither {ZIP} nor ADEChallengeData2016/ in manual_dir {manual}"
            )
        return {
            "train": self._generate_examples(root, "training"),
            "validation": self._generate_examples(root, "validation"),
        }

    def _generate_examples(
        self, root: epath.Path, folder: str
    ) -> Iterator[tuple[str, dict[str, object]]]:
        for image in sorted((root / "images" / folder).glob("*.jpg")):
            yield (
                image.stem,
                {
                    "image": image,
                    "segmentation_mask": root / "annotations" / folder / f"{image.stem}.png",
                    "file_name": image.name,
                },
            )
