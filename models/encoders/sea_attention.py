"""Strided squeeze-enhanced axial (SEA) attention, the transformer block of StrideFormer.

Layer facts follow the released PP-MobileSeg code (shared/notes/reference_architectures.md §6);
tensors are NHWC here, so a channel vector of `heads * d` is head-major, as in the reference.

`SeaAttention(dim, key_dim, heads, attn_ratio=2)`, with `nh_kd = key_dim * heads` and
`dh = attn_ratio * key_dim * heads`:

1. stride: depthwise 3x3/2 conv (with bias) + BN: attention runs at half the resolution;
2. q, k (1x1 conv + BN to nh_kd) and v (to dh);
3. detail branch: concat(q, k, v) -> depthwise 3x3 conv + BN -> act -> 1x1 conv + BN to dim;
4. row attention: q, k, v averaged over the width (q and k plus learned positional embeddings
   of length 16, linearly resized to the height), softmax(q k^T / sqrt(key_dim)) per head over
   the height, act -> 1x1 conv + BN (dh -> dh, BN scale initialised to 0); column attention
   likewise over the width;
5. xx = row + column (broadcast) + v -> act -> 1x1 conv + BN (dh -> dim, BN scale 0);
   out = hard_sigmoid(xx) * detail, bilinearly upsampled back to the input size.

`SeaBlock`: x + DropPath(SeaAttention(x)), then x + DropPath(MLP(x)), MLP being 1x1 conv + BN ->
depthwise 3x3 conv (bias) -> act -> 1x1 conv + BN.

The positional embeddings are resized with a constant (16 x n) interpolation matrix of
half-pixel linear weights without antialiasing, as the reference's `F.interpolate(mode=
"linear", align_corners=False)` does for both longer and shorter axes; on a parameter only, so
an exported model constant-folds it. BatchNorm uses the reference's momentum 0.9, epsilon 1e-5.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.layers import ACTIVATIONS, CONV_INIT, hard_sigmoid, upsample_bilinear

BN_MOMENTUM = 0.9  # Paddle's BatchNorm2D defaults
BN_EPSILON = 1e-5
POS_LENGTH = 16  # the reference's positional-embedding length per axis


def linear_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_in, n_out) weights of half-pixel linear resizing without antialiasing: output j
    samples input (j + 0.5) * n_in / n_out - 0.5, clamped to the ends."""
    m = np.zeros((n_in, n_out), np.float32)
    for j in range(n_out):
        pos = min(max((j + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n_in - 1)
        m[lo, j] += 1.0 - (pos - lo)
        m[hi, j] += pos - lo
    return m


def _bn(train: bool, name: str, zero: bool = False) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        scale_init=nn.initializers.zeros if zero else nn.initializers.ones,
        name=name,
    )


class ConvBN(nn.Module):
    """k x k conv (no bias) + BN, no activation (the reference's `Conv2DBN`)."""

    features: int
    kernel: int = 1
    groups: int = 1
    zero_bn: bool = False  # BN scale initialised to 0: the branch starts switched off

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, features)."""
        x = nn.Conv(
            self.features,
            (self.kernel, self.kernel),
            feature_group_count=self.groups,
            padding="SAME",
            use_bias=False,
            kernel_init=CONV_INIT,
            name="conv",
        )(x)
        return _bn(train, "bn", self.zero_bn)(x)


class AxialEmbedding(nn.Module):
    """A learned (length 16, channels) positional embedding, linearly resized to `n`."""

    channels: int

    @nn.compact
    def __call__(self, n: int) -> jax.Array:
        """(n, channels)."""
        pos = self.param("pos_embed", nn.initializers.normal(1.0), (POS_LENGTH, self.channels))
        return jnp.asarray(linear_resize_matrix(POS_LENGTH, n)).T @ pos


def _axial(q: jax.Array, k: jax.Array, v: jax.Array, heads: int, scale: float) -> jax.Array:
    """Attention along one axis: q, k (N, L, nh_kd), v (N, L, dh) -> (N, L, dh), per head."""
    n, length, _ = q.shape
    q, k, v = (t.reshape(n, length, heads, -1) for t in (q, k, v))
    attn = jax.nn.softmax(jnp.einsum("nigd,njgd->ngij", q, k) * scale, axis=-1)
    return jnp.einsum("ngij,njge->nige", attn, v).reshape(n, length, -1)


class SeaAttention(nn.Module):
    """Strided squeeze-enhanced axial attention (module docstring)."""

    dim: int
    key_dim: int
    heads: int
    attn_ratio: int = 2
    act: str = "relu6"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, dim) -> (N, H, W, dim)."""
        act = ACTIVATIONS[self.act]
        nh_kd, dh = self.key_dim * self.heads, self.attn_ratio * self.key_dim * self.heads
        full_hw = x.shape[1:3]
        x = nn.Conv(
            self.dim,
            (3, 3),
            strides=2,
            feature_group_count=self.dim,
            padding="SAME",
            kernel_init=CONV_INIT,
            name="stride_conv",
        )(x)
        x = _bn(train, "stride_bn")(x)
        q = ConvBN(nh_kd, name="to_q")(x, train)
        k = ConvBN(nh_kd, name="to_k")(x, train)
        v = ConvBN(dh, name="to_v")(x, train)
        detail = jnp.concatenate([q, k, v], axis=-1)
        detail = act(ConvBN(2 * dh, 3, groups=2 * dh, name="dwconv")(detail, train))
        detail = ConvBN(self.dim, name="pwconv")(detail, train)

        h, w = x.shape[1:3]
        scale = self.key_dim**-0.5
        row = _axial(
            jnp.mean(q, axis=2) + AxialEmbedding(nh_kd, name="pos_rowq")(h),
            jnp.mean(k, axis=2) + AxialEmbedding(nh_kd, name="pos_rowk")(h),
            jnp.mean(v, axis=2),
            self.heads,
            scale,
        )
        col = _axial(
            jnp.mean(q, axis=1) + AxialEmbedding(nh_kd, name="pos_colq")(w),
            jnp.mean(k, axis=1) + AxialEmbedding(nh_kd, name="pos_colk")(w),
            jnp.mean(v, axis=1),
            self.heads,
            scale,
        )
        row = ConvBN(dh, zero_bn=True, name="proj_row")(act(row[:, :, None, :]), train)
        col = ConvBN(dh, zero_bn=True, name="proj_col")(act(col[:, None, :, :]), train)
        xx = ConvBN(self.dim, zero_bn=True, name="proj")(act(row + col + v), train)
        return upsample_bilinear(hard_sigmoid(xx) * detail, full_hw)


class DropPath(nn.Module):
    """Stochastic depth: in training, zeroes a whole sample's branch with probability `rate`
    and rescales the kept ones by 1 / (1 - rate); the identity at inference."""

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """`x`, per-sample dropped in training."""
        if not train or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, (x.shape[0], 1, 1, 1))
        return jnp.where(mask, x / keep, 0.0)


class SeaBlock(nn.Module):
    """One StrideFormer transformer block: SEA attention and an MLP, each residual."""

    dim: int
    key_dim: int
    heads: int
    mlp_ratio: int
    drop_path: float = 0.0
    attn_ratio: int = 2
    act: str = "relu6"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """(N, H, W, dim) -> (N, H, W, dim)."""
        drop = DropPath(self.drop_path, name="drop_path")
        attn = SeaAttention(
            self.dim, self.key_dim, self.heads, self.attn_ratio, self.act, name="attn"
        )
        x = x + drop(attn(x, train), train)
        hidden = self.dim * self.mlp_ratio
        y = ConvBN(hidden, name="fc1")(x, train)
        y = nn.Conv(
            hidden,
            (3, 3),
            feature_group_count=hidden,
            padding="SAME",
            kernel_init=CONV_INIT,
            name="mlp_dwconv",
        )(y)
        y = ConvBN(self.dim, name="fc2")(ACTIVATIONS[self.act](y), train)
        return x + drop(y, train)
