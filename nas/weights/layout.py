"""Tensor names and layouts of each format: the one place that converts them to Flax's.

`targets(layers, fmt)` expands a family's name table (`models.encoders.naming.Layer`s) into
`{file tensor name: Target}`: where the tensor goes in the encoder's variables and how its
layout becomes Flax's:
- PyTorch (timm, torchvision) and Paddle convs are OIHW, Flax's HWIO: transpose (2, 3, 1, 0);
  a depthwise conv is OIHW too ([C, 1, kh, kw]) and lands as Flax's grouped kernel
  [kh, kw, 1, C] (`nn.Conv` with `feature_group_count=C`) by the same transpose;
- Keras convs are HWIO already; its depthwise kernels are [kh, kw, C, 1]: swap the last axes;
- dense kernels: PyTorch's Linear is [out, in], Flax's [in, out]; Paddle's and Keras's are
  [in, out] already;
- BatchNorm: weight / gamma -> `params` scale, bias / beta -> `params` bias, running_mean /
  _mean / moving_mean -> `batch_stats` mean, running_var / _variance / moving_variance ->
  `batch_stats` var.
- learned embeddings (a layer of kind `embedding`: one tensor, named whole by the table):
  Paddle's positional embeddings are [1, C, L], segnas's (L, C): drop the batch axis and
  transpose.
`SKIPPED[fmt]` are name endings that hold no weight (PyTorch's BN step counter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from models.encoders.naming import Layer


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _oihw(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a


def _keras_depthwise(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 1, 3, 2) if a.ndim == 4 else a


def _out_in(a: np.ndarray) -> np.ndarray:
    return a.T if a.ndim == 2 else a


def _ncl(a: np.ndarray) -> np.ndarray:
    # Only a [1, C, L] tensor is converted; any other shape is left for the shape check.
    return a[0].T if a.ndim == 3 and a.shape[0] == 1 else a


@dataclasses.dataclass(frozen=True)
class Convention:
    """A format's tensor names (separator, per-role suffixes) and kernel layouts."""

    sep: str
    kernel: str
    bias: str
    bn: tuple[str, str, str, str]  # scale, bias, mean, var
    conv: Callable[[np.ndarray], np.ndarray]
    depthwise: Callable[[np.ndarray], np.ndarray]
    dense: Callable[[np.ndarray], np.ndarray]
    embedding: Callable[[np.ndarray], np.ndarray] = _same


_TORCH = Convention(
    ".", "weight", "bias", ("weight", "bias", "running_mean", "running_var"), _oihw, _oihw, _out_in
)
CONVENTIONS: dict[str, Convention] = {
    "timm": _TORCH,
    "torchvision": _TORCH,
    "paddle": Convention(
        ".", "weight", "bias", ("weight", "bias", "_mean", "_variance"), _oihw, _oihw, _same, _ncl
    ),
    "keras": Convention(
        "/",
        "kernel",
        "bias",
        ("gamma", "beta", "moving_mean", "moving_variance"),
        _same,
        _keras_depthwise,
        _same,
    ),
}
SKIPPED: dict[str, tuple[str, ...]] = {
    "timm": (".num_batches_tracked",),
    "torchvision": (".num_batches_tracked",),
    "paddle": (),
    "keras": (),
}


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a file tensor goes: `collection` (params / batch_stats), `path` under the encoder
    (`stem/conv/kernel`), and `convert`, its layout change to Flax's."""

    collection: str
    path: str
    convert: Callable[[np.ndarray], np.ndarray]


def targets(layers: list[Layer], fmt: str) -> dict[str, Target]:
    """`{file tensor name: Target}` for every tensor of `layers` in format `fmt`."""
    c = CONVENTIONS[fmt]
    out: dict[str, Target] = {}
    for layer in layers:
        if layer.kind == "embedding":  # one tensor, its whole name and path in the table
            out[layer.theirs] = Target("params", layer.ours, c.embedding)
            continue
        name = f"{layer.theirs}{c.sep}"
        if layer.kind == "bn":
            for ours, theirs in zip(("scale", "bias", "mean", "var"), c.bn, strict=True):
                coll = "params" if ours in ("scale", "bias") else "batch_stats"
                out[name + theirs] = Target(coll, f"{layer.ours}/{ours}", _same)
            continue
        convert = {"depthwise": c.depthwise, "dense": c.dense}.get(layer.kind, c.conv)
        out[name + c.kernel] = Target("params", f"{layer.ours}/kernel", convert)
        if layer.kind in ("conv_bias", "dense"):
            out[name + c.bias] = Target("params", f"{layer.ours}/bias", _same)
    return out
