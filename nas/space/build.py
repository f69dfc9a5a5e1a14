"""`build_model`: the one bridge from an `Arch` (nas) to its Linen module (models)."""

from __future__ import annotations

from models.segmenter import Segmenter
from nas.space.arch import Arch


def build_model(arch: Arch) -> Segmenter:
    """The Linen module for a validated `arch`."""
    arch.validate()
    return Segmenter(
        encoder=arch.encoder,
        decoder=arch.decoder,
        num_classes=arch.num_classes,
        conv_type=arch.conv_type,
        group_size=arch.group_size,
        width=arch.width,
        depth=arch.depth,
        output_stride=arch.output_stride,
    )
