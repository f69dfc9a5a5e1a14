"""Decoders and heads: each maps `{stride: feature}` and the input size to `(logits, aux)`.

`DECODERS` is the one table of decoder names: name -> `Head` (its Linen module and its knob
config class). Decoders are named by what they are (`unet` with its `kind`, `deeplabv3` with
its `cell`), not by the paper they came from. `classifier` is the ImageNet head of the
`*_imagenet` presets: it returns `(N, classes)` logits and takes its layout from the encoder
family.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from models.decoders.classifier import Classifier, ClassifierConfig
from models.decoders.deeplabv3 import DeepLabV3, DeepLabV3Config
from models.decoders.lraspp import LRASPP, LRASPPConfig
from models.decoders.unet import UNetConfig, UNetDecoder


@dataclasses.dataclass(frozen=True)
class Head:
    """A decoder under one name: its Linen module and its knob config class."""

    module: type[nn.Module]
    config: type


DECODERS: dict[str, Head] = {
    "unet": Head(UNetDecoder, UNetConfig),
    "lraspp": Head(LRASPP, LRASPPConfig),
    "deeplabv3": Head(DeepLabV3, DeepLabV3Config),
    "classifier": Head(Classifier, ClassifierConfig),
}
# Heads that segment (return logits at the input resolution); the others classify.
SEGMENTATION: tuple[str, ...] = ("unet", "lraspp", "deeplabv3")
