"""The segmenter: encoder + decoder, returning `(logits, aux)`.

Its fields are the architecture's knobs (every field of segnas's `Arch` but the resolution,
which is the input's shape); `nas.space.build.build_model` turns an `Arch` into one. Logits
are at the input resolution, `(N, H, W, num_classes)`; for the ImageNet `classifier` decoder
they are `(N, num_classes)`. `aux` holds named intermediate tensors: `stride_S` encoder
features, `(N, ceil(H / S), ceil(W / S), C)` for every stride S up to the output stride (8, 16
or 32; any input size, the convs pad like TF "SAME"), and the decoder's own (`coarse_logits`,
`decoded`).

Encoders and decoders are found through plain dicts keyed by the space's choice values.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from models.decoders import DECODERS
from models.encoders import ENCODERS
from models.layers import ConvSpec


class Segmenter(nn.Module):
    """Encoder + decoder; `__call__(images, train)` returns `(logits, aux)`.

    `encoder` / `decoder` are names in `ENCODERS` / `DECODERS`; their configs are those
    families' knob dataclasses (None: the family's defaults); `conv` is injected into every
    block and decoder stage.
    """

    encoder: str
    decoder: str
    num_classes: int
    encoder_config: Any = None
    decoder_config: Any = None
    conv: ConvSpec = ConvSpec()
    output_stride: int = 32

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, dict]:
        """(logits, aux): logits (N, H, W, classes), or (N, classes) for the classifier."""
        family, head = ENCODERS[self.encoder], DECODERS[self.decoder]
        enc_cfg = self.encoder_config or family.config()
        dec_cfg = self.decoder_config or head.config()
        features = family.build(enc_cfg, self.output_stride, self.conv, "encoder")(images, train)
        aux: dict[str, jax.Array] = {f"stride_{s}": f for s, f in features.items()}
        if self.decoder == "classifier":
            settings = family.classifier(family.fixed["variant"], enc_cfg)
            logits = head.module(self.num_classes, **settings, name="classifier")(features, train)
            return logits, aux
        decoder = head.module(self.num_classes, config=dec_cfg, conv=self.conv, name="decoder")
        logits, extra = decoder(features, images.shape[1:3], train)
        return logits, {**aux, **extra}
