"""EfficientNet-Lite0..4 (tensorflow/tpu `efficientnet_lite_builder`): ReLU6, no SE.

Lite rules: the stem (32) and the classifier's head conv (1280) are never scaled, nor are the
repeats of the first and last block groups. Channels: `make_divisible(c * width, 8)`; repeats:
`ceil(depth * r)`. The segmentation encoder stops at the last block (320 channels for Lite0);
the 1x1 head conv belongs to the ImageNet classifier (models/decoders/classifier.py).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from models.encoders.common import BlockSpec, run_blocks
from models.layers import ConvBNAct, make_divisible

# (repeats, kernel, stride, expansion, out channels) of Lite0; input of group 1 is the stem.
_GROUPS = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
# variant -> (width coefficient, depth coefficient, native resolution, classifier dropout)
VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}
STEM = 32
HEAD = 1280


def block_specs(variant: str, width: float, depth: float) -> list[BlockSpec]:
    """The blocks of `variant`, channels scaled by `width`, repeats by `depth` (Lite rules)."""
    w_coef, d_coef, _, _ = VARIANTS[variant]
    w, d = w_coef * width, d_coef * depth
    blocks, cin = [], STEM
    for gi, (repeats, k, s, e, out) in enumerate(_GROUPS):
        if 0 < gi < len(_GROUPS) - 1:
            repeats = max(1, math.ceil(d * repeats - 1e-9))
        cout = make_divisible(out * w)
        blocks.append(BlockSpec(k, cin * e, cout, 0, "relu6", s))
        blocks += [BlockSpec(k, cout * e, cout, 0, "relu6", 1)] * (repeats - 1)
        cin = cout
    return blocks


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite feature extractor; its fields are the knobs of the search space."""

    variant: str = "lite0"
    width: float = 1.0
    depth: float = 1.0
    output_stride: int = 32
    conv_type: str = "depthwise"
    group_size: int = 8

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[int, jax.Array]:
        """Stride -> (N, H/s, W/s, C) features: the stem at 2, then each stride's last block."""
        x = ConvBNAct(STEM, 3, 2, act="relu6", name="stem")(x, train)
        features = {2: x}
        run_blocks(
            x,
            block_specs(self.variant, self.width, self.depth),
            stride=2,
            output_stride=self.output_stride,
            conv_type=self.conv_type,
            group_size=self.group_size,
            train=train,
            features=features,
        )
        return features
