"""LR-ASPP head (MobileNetV3 paper): a gated 1x1 branch on the deepest feature plus a 1/8 skip.

high = deepest feature (960 channels at 1/16 for the dilated MobileNetV3-Large), low = the last
1/8 feature. x = ReLU(BN(1x1 conv(high))) * sigmoid(1x1 conv(global mean(high))); logits =
1x1(low) + 1x1(upsample(x)), upsampled to the input size. Global pooling is used for the gate,
as torchvision does (the paper's Cityscapes variant pools 49x49 with stride (16, 20); the
parameters are identical).

Output strides: at 16 and 32 the skip is the last 1/8 feature. At output stride 8 the deepest
feature is itself the last one at 1/8, so there is no separate 1/8 skip: the skip is then the
last 1/4 feature (the next shallower stride the encoder has, as the U-Net decoder fuses only
strides shallower than the deepest), and the logits are formed at 1/4. Any input size works:
features at stride s are ceil(H / s) x ceil(W / s) and every upsample goes to the actual size
of its target (the skip, then the input).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.layers import CONV_INIT, ConvBNAct, ConvSpec, upsample_bilinear


def skip_stride(deepest: int) -> int:
    """The stride of the low-level skip when the deepest feature is at `deepest`: 8, or 4
    when the deepest is itself at 1/8 (module docstring)."""
    return 8 if deepest > 8 else 4


@dataclasses.dataclass(frozen=True)
class LRASPPConfig:
    """LR-ASPP has no searched knob; its 128 inter channels are the paper's."""

    def validate(self) -> LRASPPConfig:
        """Nothing to check; returns self."""
        return self


class LRASPP(nn.Module):
    """LR-ASPP head: the gated deepest feature plus a 1/8 skip (1/4 at output stride 8), as in
    the module docstring."""

    num_classes: int
    config: LRASPPConfig = LRASPPConfig()
    conv: ConvSpec = ConvSpec()  # its convs are 1x1: the grouping does not apply
    inter_channels: int = 128

    @nn.compact
    def __call__(
        self, features: dict[int, jax.Array], out_hw: tuple[int, int], train: bool = False
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits (N, *out_hw, num_classes) and aux {"decoded": the gated tensor at the skip's
        stride (1/8, or 1/4 at output stride 8)}."""
        deepest = max(features)
        high, low = features[deepest], features[skip_stride(deepest)]
        x = ConvBNAct(self.inter_channels, act="relu", name="cbr")(high, train)
        gate = jnp.mean(high, axis=(1, 2), keepdims=True)
        gate = nn.Conv(
            self.inter_channels, (1, 1), use_bias=False, kernel_init=CONV_INIT, name="scale"
        )(gate)
        x = upsample_bilinear(x * jax.nn.sigmoid(gate), low.shape[1:3])
        logits = nn.Conv(self.num_classes, (1, 1), name="low_classifier")(low) + nn.Conv(
            self.num_classes, (1, 1), name="high_classifier"
        )(x)
        return upsample_bilinear(logits, out_hw), {"decoded": x}
