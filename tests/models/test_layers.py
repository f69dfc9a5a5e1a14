"""models.layers against hand-computed numbers: half-pixel bilinear upsampling (the resize every
decoder uses), its gradient, the BatchNorm conventions of ConvBNAct and its TF "SAME" padding
at odd and even sizes."""

import jax
import jax.numpy as jnp
import numpy as np

from models.layers import BN_EPSILON, BN_MOMENTUM, ConvBNAct, upsample_bilinear

# TFLite RESIZE_BILINEAR with half_pixel_centers=True, align_corners=False: output pixel d reads
# source coordinate s = (d + 0.5) / scale - 0.5, clamped to [0, n - 1], and interpolates
# linearly between floor(s) and floor(s) + 1.


def test_upsample_2x2_to_4x4_half_pixel_centres():
    x = jnp.asarray([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    # scale 2 on both axes: d = 0, 1, 2, 3 -> s = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped
    # to 1), i.e. weights on the second source pixel t = 0, 0.25, 0.75, 1. Out (1, 1): rows
    # 1 + 0.25 * (3 - 1) = 1.5 and 2 + 0.25 * (4 - 2) = 2.5, then 1.5 + 0.25 * (2.5 - 1.5) = 1.75.
    want = [
        [1.0, 1.25, 1.75, 2.0],
        [1.5, 1.75, 2.25, 2.5],
        [2.5, 2.75, 3.25, 3.5],
        [3.0, 3.25, 3.75, 4.0],
    ]
    out = upsample_bilinear(x, (4, 4))
    assert out.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(np.asarray(out[0, :, :, 0]), want, rtol=0, atol=1e-6)


def test_upsample_2x3_to_3x5_non_integer_scales_per_channel():
    a = np.array([[1.0, 2.0, 4.0], [3.0, 8.0, 16.0]], np.float32)
    # two images, two channels: each (image, channel) plane is resized on its own
    x = jnp.asarray(np.stack([np.stack([a, -10 * a], -1), np.stack([a[::-1], a], -1)]))
    # rows, scale 3/2: d = 0, 1, 2 -> s = -1/6 (clamped to 0), 0.5, 7/6 (clamped to 1)
    # columns, scale 5/3: s = 0.6 d - 0.2 -> -0.2 (clamped to 0), 0.4, 1.0, 1.6, 2.2 (clamped to 2)
    # middle row = mean of the two rows = [2, 5, 10]; its column 3: 5 + 0.6 * (10 - 5) = 8
    want = np.array(
        [
            [1.0, 1.4, 2.0, 3.2, 4.0],
            [2.0, 3.2, 5.0, 8.0, 10.0],
            [3.0, 5.0, 8.0, 12.8, 16.0],
        ]
    )
    out = np.asarray(upsample_bilinear(x, (3, 5)))
    assert out.shape == (2, 3, 5, 2)
    np.testing.assert_allclose(out[0, :, :, 0], want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out[0, :, :, 1], -10 * want, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out[1, :, :, 0], want[::-1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(out[1, :, :, 1], want, rtol=0, atol=1e-5)


def test_upsample_gradient_is_the_transposed_interpolation():
    # d sum(out) / d x[i, j] = (sum of row weights of source row i) * (same for column j).
    # 2 -> 4: each source row / column gets 1 + 0.75 + 0.25 = 2, so every pixel gets 4.
    g = jax.grad(lambda x: upsample_bilinear(x, (4, 4)).sum())(jnp.ones((1, 2, 2, 1)))
    np.testing.assert_allclose(np.asarray(g[0, :, :, 0]), [[4.0, 4.0], [4.0, 4.0]], atol=1e-6)
    # 2 -> 3 rows: 1 + 0.5 = 1.5 each. 3 -> 5 columns (s = 0, 0.4, 1, 1.6, 2): column 0 gets
    # 1 + 0.6, column 1 gets 0.4 + 1 + 0.4, column 2 gets 0.6 + 1 -> 1.6, 1.8, 1.6.
    # Weighting the output rows 1, 10, 100 makes the row weights visible: source row 0 gets
    # 1 * 1 + 10 * 0.5 = 6, source row 1 gets 10 * 0.5 + 100 * 1 = 105.
    w = jnp.asarray([1.0, 10.0, 100.0]).reshape(1, 3, 1, 1)
    g = jax.grad(lambda x: (w * upsample_bilinear(x, (3, 5))).sum())(jnp.zeros((1, 2, 3, 1)))
    want = [[6 * 1.6, 6 * 1.8, 6 * 1.6], [105 * 1.6, 105 * 1.8, 105 * 1.6]]
    np.testing.assert_allclose(np.asarray(g[0, :, :, 0]), want, rtol=1e-6)


def test_upsample_same_size_is_the_identity():
    x = jnp.arange(6.0).reshape(1, 2, 3, 1)
    assert upsample_bilinear(x, (2, 3)) is x


def test_conv_bn_act_running_statistics_use_momentum_0_99():
    assert (BN_MOMENTUM, BN_EPSILON) == (0.99, 1e-3)
    layer = ConvBNAct(1, act="none")
    # one channel through a 1x1 conv of weight 2: the BN input is 2 * x = 2, 4, 6, 12
    x = jnp.asarray([1.0, 2.0, 3.0, 6.0]).reshape(1, 2, 2, 1)
    variables = layer.init(jax.random.key(0), x)
    variables = {
        "params": {**variables["params"], "conv": {"kernel": jnp.full((1, 1, 1, 1), 2.0)}},
        "batch_stats": variables["batch_stats"],
    }
    out, upd = layer.apply(variables, x, train=True, mutable=["batch_stats"])
    # batch mean 6, biased variance (16 + 4 + 0 + 36) / 4 = 14;
    # running: 0.99 * 0 + 0.01 * 6 = 0.06 and 0.99 * 1 + 0.01 * 14 = 1.13
    np.testing.assert_allclose(np.asarray(upd["batch_stats"]["bn"]["mean"]), [0.06], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(upd["batch_stats"]["bn"]["var"]), [1.13], rtol=1e-6)
    # train mode normalises with the batch statistics: (2x - 6) / sqrt(14 + 1e-3)
    want = np.array([-4.0, -2.0, 0.0, 6.0]) / np.sqrt(14.001)
    np.testing.assert_allclose(np.asarray(out).ravel(), want, rtol=1e-5)


def _ones_conv(n: int, kernel: int, stride: int, dilation: int = 1) -> np.ndarray:
    """ConvBNAct (BN at its initial statistics, no activation) with an all-ones kernel over
    arange(n * n) as one n x n channel: each output is the sum of the inputs its taps hit."""
    layer = ConvBNAct(1, kernel, stride, dilation, act="none")
    x = jnp.arange(float(n * n)).reshape(1, n, n, 1)
    variables = layer.init(jax.random.key(0), x)
    params = {**variables["params"], "conv": {"kernel": jnp.ones((kernel, kernel, 1, 1))}}
    out = layer.apply({**variables, "params": params}, x)
    return np.asarray(out[0, :, :, 0]) * np.sqrt(1.0 + BN_EPSILON)  # undo BN's 1/sqrt(1 + eps)


def test_convs_pad_like_tf_same_odd_and_even_sizes():
    # TF "SAME", stride 2, kernel 3: out = ceil(n / 2); total padding (out - 1) * 2 + 3 - n,
    # the smaller half before. n = 6: out 3, padding (0, 1): output (0, 0) sums rows and
    # columns 0-2 of arange(36).reshape(6, 6) = 3 + 21 + 39 = 63; output (2, 2) sums rows and
    # columns 4-5 = 28 + 29 + 34 + 35 = 126.
    out = _ones_conv(6, 3, 2)
    assert out.shape == (3, 3)
    np.testing.assert_allclose([out[0, 0], out[2, 2]], [63.0, 126.0], rtol=1e-5)
    # n = 5: out 3, padding (1, 1): output (0, 0) sums rows and columns 0-1 of
    # arange(25).reshape(5, 5) = 0 + 1 + 5 + 6 = 12; output (2, 2) rows and columns 3-4 = 84.
    out = _ones_conv(5, 3, 2)
    assert out.shape == (3, 3)
    np.testing.assert_allclose([out[0, 0], out[2, 2]], [12.0, 84.0], rtol=1e-5)
    # n = 7, kernel 5 (MobileNetV3's 5x5 stride-2 blocks): out 4, padding (2, 2): output (0, 0)
    # sums rows and columns 0-2 of arange(49).reshape(7, 7) = 3 + 24 + 45 = 72.
    out = _ones_conv(7, 5, 2)
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out[0, 0], 72.0, rtol=1e-5)
    # Dilation 2, kernel 3, stride 1, n = 5: padding (2, 2); output (0, 0) taps rows and
    # columns {-2, 0, 2}: 0 + 2 + 10 + 12 = 24.
    out = _ones_conv(5, 3, 1, dilation=2)
    assert out.shape == (5, 5)
    np.testing.assert_allclose(out[0, 0], 24.0, rtol=1e-5)
