"""The segmenter: encoder + decoder, returning `(logits, aux)`.

Its fields are the architecture's knobs (every field of segnas's `Arch` but the resolution,
which is the input's shape); `nas.space.build.build_model` turns an `Arch` into one. Logits
are at the input resolution, `(N, H, W, num_classes)`; for the ImageNet `classifier` decoder
they are `(N, num_classes)`. `aux` holds named intermediate tensors: `stride_S` encoder
features and the decoder's own (`coarse_logits`, `decoded`).

Encoders and decoders are found through plain dicts keyed by the space's choice values.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from models.decoders.classifier import Classifier
from models.decoders.lraspp import LRASPP
from models.decoders.seed000 import Seed000Decoder
from models.encoders import efficientnet_lite, mobilenet_v3
from models.encoders.efficientnet_lite import EfficientNetLite
from models.encoders.mobilenet_v3 import MobileNetV3

# choice value -> (module class, fixed keyword arguments)
ENCODERS: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "mobilenet_v3_large": (MobileNetV3, {"variant": "large"}),
    "mobilenet_v3_small": (MobileNetV3, {"variant": "small"}),
    **{f"efficientnet_{v}": (EfficientNetLite, {"variant": v}) for v in efficientnet_lite.VARIANTS},
}


def _classifier(encoder: str, width: float, num_classes: int) -> Classifier:
    cls, kw = ENCODERS[encoder]
    if cls is MobileNetV3:
        return Classifier(
            num_classes,
            hidden=mobilenet_v3.classifier_hidden(kw["variant"], width),
            dropout=0.2,
            name="classifier",
        )
    dropout = efficientnet_lite.VARIANTS[kw["variant"]][3]
    return Classifier(
        num_classes, head_conv=efficientnet_lite.HEAD, dropout=dropout, name="classifier"
    )


class Segmenter(nn.Module):
    """Encoder + decoder; `__call__(images, train)` returns `(logits, aux)`."""

    encoder: str
    decoder: str
    num_classes: int
    conv_type: str = "depthwise"
    group_size: int = 8
    width: float = 1.0
    depth: float = 1.0
    output_stride: int = 32

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, dict]:
        """(logits (N, H, W, C), or (N, C) for `classifier`; aux: named intermediate tensors)."""
        cls, kw = ENCODERS[self.encoder]
        features = cls(
            width=self.width,
            depth=self.depth,
            output_stride=self.output_stride,
            conv_type=self.conv_type,
            group_size=self.group_size,
            name="encoder",
            **kw,
        )(images, train)
        aux: dict[str, jax.Array] = {f"stride_{s}": f for s, f in features.items()}
        if self.decoder == "classifier":
            return _classifier(self.encoder, self.width, self.num_classes)(features, train), aux
        out_hw = images.shape[1:3]
        if self.decoder == "lraspp":
            head = LRASPP(self.num_classes, name="decoder")
        else:
            head = Seed000Decoder(
                self.decoder, self.num_classes, self.conv_type, self.group_size, name="decoder"
            )
        logits, extra = head(features, out_hw, train)
        return logits, {**aux, **extra}
