"""Where MobileNetV2's encoder layers live in torchvision weight files (`mobilenet_v2`).

`NAMES["torchvision"](variant, config)` lists the encoder's `Layer`s (models/encoders/
naming.py): `features.0.0` / `features.0.1` the stem, `features.K.conv` block K's layers in
order. A block with an expand conv holds expand `.0.0` + BN `.0.1`, depthwise `.1.0` + BN
`.1.1`, project `.2` + BN `.3`; the first block (expansion 1) has no expand conv: depthwise
`.0.0` + `.0.1`, project `.1` + BN `.2`. The 1x1 conv to 1280 (`features.18`) and the
classifier are segnas's ImageNet classifier, not its encoder, so `IGNORED` lists them.

torchvision pads its stride-2 convs by one pixel on every side, segnas pads TF "SAME" (none
before, one after on even sizes): imported weights see inputs shifted by one pixel at those
layers, as with the other torchvision imports.
"""

from __future__ import annotations

from collections.abc import Callable

from models.encoders import mobilenet_v2
from models.encoders.naming import Layer, conv_bn


def torchvision(variant: str, config: mobilenet_v2.MobileNetV2Config) -> list[Layer]:
    """The encoder in torchvision's naming (module docstring)."""
    layers = conv_bn("stem", "features.0.0", "features.0.1")
    cin = mobilenet_v2.stem_channels(config.width)
    for k, b in enumerate(mobilenet_v2.block_specs(config.width, config.depth), start=1):
        ours, p, m = f"block{k}", f"features.{k}.conv", 0
        # segnas's block omits the expand conv exactly when the expanded width is the input's.
        if b.expanded != cin:
            layers += conv_bn(f"{ours}/expand", f"{p}.0.0", f"{p}.0.1")
            m = 1
        layers += conv_bn(f"{ours}/spatial", f"{p}.{m}.0", f"{p}.{m}.1", depthwise=True)
        layers += conv_bn(f"{ours}/project", f"{p}.{m + 1}", f"{p}.{m + 2}")
        cin = b.out
    return layers


NAMES: dict[str, Callable[[str, mobilenet_v2.MobileNetV2Config], list[Layer]]] = {
    "torchvision": torchvision,
}
# The ImageNet classifier's names (the 1280 head conv at width 1 and depth 1, and the Linear).
IGNORED: dict[str, tuple[str, ...]] = {"torchvision": ("features.18.", "classifier.")}
