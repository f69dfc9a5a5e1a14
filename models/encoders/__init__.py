"""Encoders: each maps an image batch to `{stride: feature}` (the last feature at each stride).

`ENCODERS` is the one table of encoder names: name -> `Family` (its Linen module, its knob
config class, the settings its name fixes, and the ImageNet classifier's layout). The search
space derives its allowed encoder names and knobs from it. Adding a family: its module and
config, one line here, one preset, one test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from models.encoders import (
    efficientnet_lite,
    efficientnet_lite_names,
    mobilenet_v2,
    mobilenet_v2_names,
    mobilenet_v3,
    mobilenet_v3_names,
    shufflenet_v2,
    shufflenet_v2_names,
    strideformer,
    strideformer_names,
)
from models.encoders.naming import Layer


@dataclasses.dataclass(frozen=True)
class Family:
    """An encoder family under one name: `module(variant=..., config=..., output_stride=...,
    conv=...)` builds it; `classifier(variant, config)` gives the ImageNet head's settings;
    `names[format](variant, config)` the encoder's layers in a weight file of that format, whose
    names starting with one of `ignored[format]` are the classifier head's. `classifier` is None
    for a family without an ImageNet head (the `classifier` decoder refuses it)."""

    module: type[nn.Module]
    config: type
    fixed: dict[str, Any]
    classifier: Callable[[str, Any], dict[str, Any]] | None
    names: dict[str, Callable[[str, Any], list[Layer]]] = dataclasses.field(default_factory=dict)
    ignored: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def build(self, config: Any, output_stride: int, conv: Any, name: str) -> nn.Module:
        """The family's Linen module for `config`."""
        return self.module(
            **self.fixed, config=config, output_stride=output_stride, conv=conv, name=name
        )


def _mnv3(variant: str) -> Family:
    return Family(
        mobilenet_v3.MobileNetV3,
        mobilenet_v3.MobileNetV3Config,
        {"variant": variant},
        mobilenet_v3.classifier_head,
        mobilenet_v3_names.NAMES,
        mobilenet_v3_names.IGNORED,
    )


def _mnv2() -> Family:
    return Family(
        mobilenet_v2.MobileNetV2,
        mobilenet_v2.MobileNetV2Config,
        {"variant": "v2"},
        mobilenet_v2.classifier_head,
        mobilenet_v2_names.NAMES,
        mobilenet_v2_names.IGNORED,
    )


def _shufflenet(variant: str) -> Family:
    return Family(
        shufflenet_v2.ShuffleNetV2,
        shufflenet_v2.ShuffleNetV2Config,
        {"variant": variant},
        shufflenet_v2.classifier_head,
        shufflenet_v2_names.NAMES,
        shufflenet_v2_names.IGNORED,
    )


def _lite(variant: str) -> Family:
    return Family(
        efficientnet_lite.EfficientNetLite,
        efficientnet_lite.EfficientNetLiteConfig,
        {"variant": variant},
        efficientnet_lite.classifier_head,
        efficientnet_lite_names.NAMES,
        efficientnet_lite_names.IGNORED,
    )


def _strideformer(variant: str) -> Family:
    return Family(
        strideformer.StrideFormer,
        strideformer.StrideFormerConfig,
        {"variant": variant},
        None,
        strideformer_names.NAMES,
        strideformer_names.IGNORED,
    )


ENCODERS: dict[str, Family] = {
    "mobilenet_v3_large": _mnv3("large"),
    "mobilenet_v3_small": _mnv3("small"),
    "mobilenet_v2": _mnv2(),
    "shufflenet_v2": _shufflenet("torchvision"),  # torchvision's classification layout
    "shufflenet_v2_seg": _shufflenet("seg"),  # seed 001's segmentation variant
    **{f"efficientnet_{v}": _lite(v) for v in efficientnet_lite.VARIANTS},
    "strideformer_tiny": _strideformer("tiny"),  # seed 002's backbones
    "strideformer_base": _strideformer("base"),
}
