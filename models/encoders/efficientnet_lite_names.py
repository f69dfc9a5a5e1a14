"""Where EfficientNet-Lite's encoder layers live in timm weight files (`tf_efficientnet_lite0`
... `tf_efficientnet_lite4`, and `efficientnet_lite0`).

`NAMES["timm"](variant, config)` lists the encoder's `Layer`s (models/encoders/naming.py):
conv_stem / bn1, then `blocks.G.I` for block I of group G (timm's stages are the Lite block
groups; the first block, without an expand conv, is a `DepthwiseSeparableConv`). The 1280 head
conv (`conv_head` / `bn2`) and the classifier belong to segnas's ImageNet classifier, not to
the encoder (models/encoders/efficientnet_lite.py), so `IGNORED` lists them.
"""

from __future__ import annotations

from collections.abc import Callable

from models.encoders import efficientnet_lite
from models.encoders.naming import Layer, block_names, conv_bn, timm_block


def timm(variant: str, config: efficientnet_lite.EfficientNetLiteConfig) -> list[Layer]:
    """The encoder in timm's naming (module docstring)."""
    specs = efficientnet_lite.block_specs(variant, config.width, config.depth)
    inputs = [efficientnet_lite.STEM] + [b.out for b in specs[:-1]]
    blocks = block_names(
        efficientnet_lite.group_repeats(variant, config.depth),
        [b.expanded for b in specs],
        inputs,
        [False] * len(specs),
    )
    layers = conv_bn("stem", "conv_stem", "bn1")
    for b in blocks:
        layers += timm_block(b)
    return layers


NAMES: dict[str, Callable[[str, efficientnet_lite.EfficientNetLiteConfig], list[Layer]]] = {
    "timm": timm,
}
# The ImageNet classifier's names: in the file, not in the encoder.
IGNORED: dict[str, tuple[str, ...]] = {"timm": ("conv_head.", "bn2.", "classifier.")}
