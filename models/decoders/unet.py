"""The U-Net decoder (seed 000's): an SE bottleneck on the deepest feature, then one stage per
skip; its `kind` says what each stage does.

The decoder starts on the deepest encoder feature (1/32, or 1/16 / 1/8 at output stride 16 / 8)
with a squeeze-and-excite bottleneck that also predicts a coarse mask (`aux["coarse_logits"]`,
usable for deep supervision); global pooling there is cheap because the tensor is small. Each
stage then fuses the next shallower skip (1/16, 1/8, 1/4). Every stage first projects the coarse
tensor to the skip's channels with a linear 1x1 conv *before* upsampling (cheaper at low
resolution), then:

- `bilinear`: upsample, non-linearity, add the skip;
- `channel_attention`: upsample, add the skip, SE, 1x1 conv, 3x3 spatial conv (`conv`);
- `mlp`: upsample, add the skip, two 1x1 convs.

A 1x1 classifier at 1/4 and a bilinear upsample give logits at the input resolution.

Output strides: the stages fuse the skips at 1/16, 1/8 and 1/4 that are shallower than the
deepest feature, at the strides they exist. At output stride 32: stages at 16, 8, 4; at 16:
8, 4 (the 1/16 feature is the deepest, the bottleneck's input); at 8 the encoder has no
1/16 or 1/32 feature and its deepest is at 1/8, so the bottleneck works at 1/8 and one
stage fuses the 1/4 skip. Any input size works: features at stride s are ceil(H / s) x
ceil(W / s) (TF "SAME" padding), each stage upsamples to its skip's actual size and the
logits go to the input size.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from models.layers import (
    ConvBNAct,
    ConvSpec,
    SqueezeExcite,
    make_divisible,
    upsample_bilinear,
)

KINDS = ("bilinear", "channel_attention", "mlp")
SKIP_STRIDES = (16, 8, 4)


class CoarseBottleneck(nn.Module):
    """SE on the deepest feature, a 1x1 conv to `features`, and a coarse-mask classifier."""

    features: int
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """(x reduced to `features` channels, coarse-mask logits), both at x's resolution."""
        x = SqueezeExcite(make_divisible(x.shape[-1] / 4), name="se")(x)
        x = ConvBNAct(self.features, act="relu", name="reduce")(x, train)
        return x, nn.Conv(self.num_classes, (1, 1), name="coarse")(x)


class DecoderStage(nn.Module):
    """Fuses the coarser tensor `x` into `skip` (see the module docstring for each kind)."""

    kind: str
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(self, x: jax.Array, skip: jax.Array, train: bool = False) -> jax.Array:
        """`x` fused into `skip`: a tensor of skip's shape (N, h, w, skip channels)."""
        c = skip.shape[-1]
        x = ConvBNAct(c, act="none", name="project")(x, train)
        x = upsample_bilinear(x, skip.shape[1:3])
        if self.kind == "bilinear":
            return nn.relu(x) + skip
        x = x + skip
        if self.kind == "channel_attention":
            x = SqueezeExcite(make_divisible(c / 4), name="se")(x)
            x = ConvBNAct(c, act="relu", name="pointwise")(x, train)
            return ConvBNAct(
                c,
                3,
                groups=self.conv.groups(c),
                act="relu",
                name="spatial",
            )(x, train)
        if self.kind == "mlp":
            x = ConvBNAct(c, act="relu", name="mlp1")(x, train)
            return ConvBNAct(c, act="relu", name="mlp2")(x, train)
        raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """The decoder's knob: what each stage does (module docstring)."""

    kind: str = "mlp"

    def validate(self) -> UNetConfig:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        if self.kind not in KINDS:
            raise ValueError(f"kind: got {self.kind!r}; allowed: {', '.join(KINDS)}")
        return self


class UNetDecoder(nn.Module):
    """The U-Net decoder: a coarse bottleneck, then one `config.kind` stage per skip."""

    num_classes: int
    config: UNetConfig = UNetConfig()
    conv: ConvSpec = ConvSpec()

    @nn.compact
    def __call__(
        self, features: dict[int, jax.Array], out_hw: tuple[int, int], train: bool = False
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits (N, *out_hw, num_classes) and aux {"coarse_logits", "decoded" (at 1/4)}."""
        deepest = max(features)
        skips = [s for s in SKIP_STRIDES if s < deepest]
        x, coarse = CoarseBottleneck(
            features[skips[0]].shape[-1], self.num_classes, name="bottleneck"
        )(features[deepest], train)
        for s in skips:
            x = DecoderStage(self.config.kind, self.conv, name=f"stage{s}")(x, features[s], train)
        logits = nn.Conv(self.num_classes, (1, 1), name="classify")(x)
        return upsample_bilinear(logits, out_hw), {"coarse_logits": coarse, "decoded": x}
