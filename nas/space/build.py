"""`build_model`: the one bridge from an `Arch` (nas) to its Linen module (models)."""

from __future__ import annotations

from models.segmenter import Segmenter
from nas.space.arch import Arch


def build_model(arch: Arch) -> Segmenter:
    """The Linen module for a validated `arch`."""
    arch.validate()
    return Segmenter(
        encoder=arch.encoder.name,
        decoder=arch.decoder.name,
        num_classes=arch.num_classes,
        encoder_config=arch.encoder.config,
        decoder_config=arch.decoder.config,
        conv=arch.conv,
        output_stride=arch.output_stride,
    )
