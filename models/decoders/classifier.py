"""ImageNet classifier heads, so encoders can be pinned against published classification counts.

MobileNetV3: global pool -> Dense(hidden) -> hard-swish -> dropout -> Dense(classes).
EfficientNet-Lite: 1x1 conv to 1280 + BN + ReLU6 -> global pool -> dropout -> Dense(classes).
MobileNetV2: the same, its 1x1 conv 1280 * max(1, width) wide.
ShuffleNetV2: conv5 (1x1 conv to 1024, or 2048 at width 2, + BN + ReLU) -> global pool -> Dense
(classes), no dropout.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.layers import ConvBNAct, hard_swish


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """The ImageNet head has no searched knob: its layout comes from the encoder family."""

    def validate(self) -> ClassifierConfig:
        """Nothing to check; returns self."""
        return self


class Classifier(nn.Module):
    """ImageNet classifier head on the deepest encoder feature (layouts in the module docstring)."""

    num_classes: int
    head_conv: int = 0  # 1x1 conv before pooling (Lite, MobileNetV2, ShuffleNetV2); 0: none
    head_act: str = "relu6"  # its activation: ReLU6, or ReLU for ShuffleNetV2's conv5
    hidden: int = 0  # MobileNetV3's hidden dense width; 0 for none
    dropout: float = 0.2

    @nn.compact
    def __call__(self, features: dict[int, jax.Array], train: bool = False) -> jax.Array:
        """(N, num_classes) logits from the deepest of the stride -> feature map dict."""
        x = features[max(features)]
        if self.head_conv:
            x = ConvBNAct(self.head_conv, act=self.head_act, name="head_conv")(x, train)
        x = jnp.mean(x, axis=(1, 2))
        if self.hidden:
            x = hard_swish(nn.Dense(self.hidden, name="hidden")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="logits")(x)
