"""PP-MobileSeg's decoder: the Aggregated Attention Module (AAM or AAMSx8) and its head.

It fuses the encoder's features at 1/8, 1/16 and 1/32 (so it needs output stride 32). Every
`e_*` / `a_*` below is a 1x1 conv (no bias) + BN to 256 channels; gates are `sigmoid(a_*)`:

- `aam` (PP-MobileSeg-Tiny), fused at 1/16: f8 is first shrunk to 1/16 (2 x 2 mean: the
  reference's half-pixel bilinear resize by 0.5 without antialiasing samples exactly that);
  F = e8 + e16, gates [a8, a16, a32], the 1/32 terms upsampled to 1/16;
- `aamsx8` (PP-MobileSeg-Base), fused at 1/8: f16 is upsampled to 1/8 before its gate conv;
  F = e8, gates [a16, a32].

out = F * prod(gates) + e32. The head: 1x1 depthwise conv (no bias) + BN + ReLU -> channel
dropout 0.1 -> 1x1 conv to the classes (bias) -> bilinear upsample to the input
(align_corners=False). BN: Paddle's momentum 0.9 and epsilon 1e-5.

**Table 4's switches** (the paper's caption is ambiguous; segnas's meaning, one for each):
- `ensemble_vote=False`: the gates filter F one by one, as SeaFormer's fusion blocks do: F
  times every gate but the last (a32), then a new 1x1 conv + BN (256 -> 256, SeaFormer's local
  embedding) and times the a32 gate; +66,048 parameters at 256 channels.
- `final_semantics=False`: no `+ e32` term, and no e32 conv (-(C32 * 256 + 512) parameters:
  -49,664 for StrideFormer-Base).
The paper prints 5.71 M for both rows with ensemble vote and 5.63 M without it; neither meaning
reproduces those (no reading of the caption does: the e32 conv that "no final semantics" drops
is not visible in the printed 5.71): `experiments/seed002/table4.py` prints segnas's counts.

`aux["low_logits"]` holds the logits before the final upsample, for the Valid Interpolate
Module (`models/vim.py`), which the decoder table marks as applicable here.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from models.encoders.sea_attention import BN_EPSILON, BN_MOMENTUM
from models.layers import CONV_INIT, ConvBNAct, ConvSpec, upsample_bilinear

VARIANTS: tuple[str, ...] = ("aam", "aamsx8")
CHANNELS = 256
DROPOUT = 0.1
OUTPUT_STRIDE = 32  # the module fuses 1/8, 1/16 and 1/32
_BN = {"bn_momentum": BN_MOMENTUM, "bn_epsilon": BN_EPSILON}


@dataclasses.dataclass(frozen=True)
class AAMConfig:
    """The decoder's knobs: which module (`variant`) and Table 4's two switches."""

    variant: str = "aam"
    ensemble_vote: bool = True
    final_semantics: bool = True

    def validate(self) -> AAMConfig:
        """Raises ValueError naming the knob and its allowed values; returns self."""
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: got {self.variant!r}; allowed: {', '.join(VARIANTS)}")
        for knob in ("ensemble_vote", "final_semantics"):
            if not isinstance(getattr(self, knob), bool):
                raise ValueError(f"{knob}: got {getattr(self, knob)!r}; allowed: true, false")
        return self


def _shrink(x: jax.Array) -> jax.Array:
    """Halves H and W (ceil) by 2 x 2 means, pads excluded."""
    return nn.avg_pool(x, (2, 2), (2, 2), padding="SAME", count_include_pad=False)


class SegHead(nn.Module):
    """1x1 depthwise conv + BN + ReLU -> channel dropout -> 1x1 conv to the classes (bias)."""

    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Low-resolution logits (N, h, w, classes)."""
        c = x.shape[-1]
        x = nn.Conv(
            c, (1, 1), feature_group_count=c, use_bias=False, kernel_init=CONV_INIT, name="dwconv"
        )(x)
        x = nn.BatchNorm(
            use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name="bn"
        )(x)
        x = nn.Dropout(DROPOUT, broadcast_dims=(1, 2), deterministic=not train)(nn.relu(x))
        return nn.Conv(self.num_classes, (1, 1), kernel_init=CONV_INIT, name="classify")(x)


class AAM(nn.Module):
    """AAM / AAMSx8 and the segmentation head (module docstring)."""

    num_classes: int
    config: AAMConfig = AAMConfig()
    conv: ConvSpec = ConvSpec()  # ignored: every conv here is 1x1

    @nn.compact
    def __call__(
        self, features: dict[int, jax.Array], out_hw: tuple[int, int], train: bool = False
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Logits (N, *out_hw, classes) and aux {"decoded": the fused 256-channel feature,
        "low_logits": the logits before the final upsample}."""
        cfg = self.config.validate()
        missing = [s for s in (8, 16, 32) if s not in features]
        if missing:
            raise ValueError(
                f"output_stride: got {max(features)}; allowed: {OUTPUT_STRIDE} for the aam "
                "decoder (it fuses the features at 1/8, 1/16 and 1/32)"
            )

        def cbn(name: str, x: jax.Array) -> jax.Array:
            return ConvBNAct(CHANNELS, act="none", name=name, **_BN)(x, train)

        f8, f16, f32 = features[8], features[16], features[32]
        if cfg.variant == "aam":
            f8 = _shrink(f8)
            hw = f16.shape[1:3]
            fused = cbn("embed8", f8) + cbn("embed16", f16)
            gates = [cbn("gate8", f8), cbn("gate16", f16)]
        else:
            hw = f8.shape[1:3]
            fused = cbn("embed8", f8)
            gates = [cbn("gate16", upsample_bilinear(f16, hw))]
        gates = [jax.nn.sigmoid(g) for g in gates]
        gate32 = upsample_bilinear(jax.nn.sigmoid(cbn("gate32", f32)), hw)
        for g in gates:
            fused = fused * g
        if not cfg.ensemble_vote:  # SeaFormer's one-by-one fusion: re-embed, then the a32 gate
            fused = cbn("embed_fused", fused)
        fused = fused * gate32
        if cfg.final_semantics:
            fused = fused + upsample_bilinear(cbn("embed32", f32), hw)

        low = SegHead(self.num_classes, name="head")(fused, train)
        logits = upsample_bilinear(low, out_hw)
        return logits, {"decoded": fused, "low_logits": low}
