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

from models.decoders.aam import AAM, AAMConfig
from models.decoders.classifier import Classifier, ClassifierConfig
from models.decoders.deeplabv3 import DeepLabV3, DeepLabV3Config
from models.decoders.lraspp import LRASPP, LRASPPConfig
from models.decoders.unet import UNetConfig, UNetDecoder


@dataclasses.dataclass(frozen=True)
class Head:
    """A decoder under one name: its Linen module and its knob config class.

    `output_stride`: the one output stride the decoder works at (None: any); an arch with
    another is an error, a search move resets it. `vim`: the decoder returns its logits before
    the final half-pixel bilinear upsample as `aux["low_logits"]`, so the Valid Interpolate
    Module (`models/vim.py`) applies to it.
    """

    module: type[nn.Module]
    config: type
    output_stride: int | None = None
    vim: bool = False


DECODERS: dict[str, Head] = {
    "unet": Head(UNetDecoder, UNetConfig),
    "lraspp": Head(LRASPP, LRASPPConfig),
    "deeplabv3": Head(DeepLabV3, DeepLabV3Config),
    "aam": Head(AAM, AAMConfig, output_stride=32, vim=True),
    "classifier": Head(Classifier, ClassifierConfig),
}
# Heads that segment (return logits at the input resolution); the others classify.
SEGMENTATION: tuple[str, ...] = ("unet", "lraspp", "deeplabv3", "aam")
