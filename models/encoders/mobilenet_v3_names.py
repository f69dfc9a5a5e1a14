"""Where MobileNetV3's encoder layers live in timm, torchvision and Keras weight files.

`NAMES[format](variant, config)` lists the encoder's `Layer`s (models/encoders/naming.py) for
one of the formats below; `IGNORED[format]` are the name prefixes of the ImageNet classifier
head, which a file holds but segnas's segmentation encoder does not. The block structure comes
from `mobilenet_v3.block_specs`, so a depth or width multiplier changes the names and shapes
expected exactly as it changes the model.

- `timm` (`mobilenetv3_large_100`, `tf_mobilenetv3_large_100`, `..._small_100`): conv_stem /
  bn1, then `blocks.S.I` per stage of the reference table (timm's stage list is the same
  grouping as segnas's), the 960 / 576 1x1 conv as the `ConvBnAct` `blocks.6.0` (large) /
  `blocks.5.0` (small). timm's `conv_head` comes after global pooling: classifier, not encoder.
- `torchvision` (`mobilenet_v3_large`): `features.0` the stem, `features.K.block.M` block K's
  sub-layers in order (expand, depthwise, SE fc1 / fc2, project), the last 1x1 conv last.
- `keras` (`keras.applications.MobileNetV3Large`, Keras 3 names; Keras 2 files are read
  with their names normalised to these by `nas.weights.readers`): conv / conv_bn,
  `expanded_conv[_B]_{expand,depthwise,squeeze_excite_conv[_1],project}[_bn]`, conv_1 /
  conv_1_bn. Keras's stem is 16 channels at every alpha (segnas scales it), so only files at
  width >= 0.75 can match.
"""

from __future__ import annotations

from collections.abc import Callable

from models.encoders import mobilenet_v3
from models.encoders.common import scaled_repeats
from models.encoders.naming import BlockNames, Layer, block_names, conv_bn, timm_block
from models.layers import make_divisible


def _blocks(variant: str, config: mobilenet_v3.MobileNetV3Config) -> list[BlockNames]:
    specs = mobilenet_v3.block_specs(variant, config.width, config.depth)
    table, _ = mobilenet_v3.VARIANTS[variant]
    sizes = [scaled_repeats(len(g), config.depth) for g in table]
    inputs = [make_divisible(16 * config.width)] + [b.out for b in specs[:-1]]
    return block_names(
        sizes, [b.expanded for b in specs], inputs, [b.se_squeeze > 0 for b in specs]
    )


def timm(variant: str, config: mobilenet_v3.MobileNetV3Config) -> list[Layer]:
    """The encoder in timm's naming (module docstring)."""
    blocks = _blocks(variant, config)
    layers = conv_bn("stem", "conv_stem", "bn1")
    for b in blocks:
        layers += timm_block(b)
    last = f"blocks.{blocks[-1].stage + 1}.0"
    return layers + conv_bn("last_conv", f"{last}.conv", f"{last}.bn1")


def torchvision(variant: str, config: mobilenet_v3.MobileNetV3Config) -> list[Layer]:
    """The encoder in torchvision's naming (module docstring)."""
    blocks = _blocks(variant, config)
    layers = conv_bn("stem", "features.0.0", "features.0.1")
    for k, b in enumerate(blocks, start=1):
        p, m = f"features.{k}.block", 0
        if b.expand:
            layers += conv_bn(f"{b.ours}/expand", f"{p}.0.0", f"{p}.0.1")
            m = 1
        layers += conv_bn(f"{b.ours}/spatial", f"{p}.{m}.0", f"{p}.{m}.1", depthwise=True)
        if b.se:
            m += 1
            layers += [
                Layer(f"{b.ours}/se/reduce", f"{p}.{m}.fc1", "conv_bias"),
                Layer(f"{b.ours}/se/expand", f"{p}.{m}.fc2", "conv_bias"),
            ]
        layers += conv_bn(f"{b.ours}/project", f"{p}.{m + 1}.0", f"{p}.{m + 1}.1")
    last = f"features.{len(blocks) + 1}"
    return layers + conv_bn("last_conv", f"{last}.0", f"{last}.1")


def keras(variant: str, config: mobilenet_v3.MobileNetV3Config) -> list[Layer]:
    """The encoder in `keras.applications` naming (module docstring)."""
    layers = conv_bn("stem", "conv", "conv_bn")
    for i, b in enumerate(_blocks(variant, config)):
        p = f"expanded_conv_{i}_" if i else "expanded_conv_"
        if b.expand:
            layers += conv_bn(f"{b.ours}/expand", f"{p}expand", f"{p}expand_bn")
        layers += conv_bn(f"{b.ours}/spatial", f"{p}depthwise", f"{p}depthwise_bn", True)
        if b.se:
            layers += [
                Layer(f"{b.ours}/se/reduce", f"{p}squeeze_excite_conv", "conv_bias"),
                Layer(f"{b.ours}/se/expand", f"{p}squeeze_excite_conv_1", "conv_bias"),
            ]
        layers += conv_bn(f"{b.ours}/project", f"{p}project", f"{p}project_bn")
    return layers + conv_bn("last_conv", "conv_1", "conv_1_bn")


NAMES: dict[str, Callable[[str, mobilenet_v3.MobileNetV3Config], list[Layer]]] = {
    "timm": timm,
    "torchvision": torchvision,
    "keras": keras,
}
# The ImageNet classifier head's names (after global pooling): in the file, not in the encoder.
IGNORED: dict[str, tuple[str, ...]] = {
    "timm": ("conv_head.", "classifier."),
    "torchvision": ("classifier.",),
    "keras": ("conv_2/", "logits/"),
}
