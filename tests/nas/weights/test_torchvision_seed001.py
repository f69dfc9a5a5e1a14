"""Importing torchvision ShuffleNetV2 and MobileNetV2 files (seed 001's encoders).

The state dicts are written here by hand from torchvision's module layout (names and PyTorch
shapes; their trainable totals are torchvision's documented counts), filled with random
values, and loaded through the importer. A NumPy forward in PyTorch's conventions (NCHW,
OIHW, symmetric padding) on those tensors must then match segnas's encoder: the names, the
layout conversions and the channel shuffle order are all checked by one number. Input sizes
are odd at every stride-2 layer, where TF "SAME" padding equals torchvision's one pixel per
side. BN uses segnas's epsilon (1e-3; torchvision's is 1e-5) on both sides.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import traverse_util

from models.encoders import ENCODERS
from models.layers import ConvSpec
from nas.errors import UserError
from nas.space.arch import Arch
from nas.weights.apply import load
from tests.nas.weights.helpers import write

EPS = 1e-3
STATS = ("running_mean", "running_var", "num_batches_tracked")
_ROWS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
_ROWS += [(6, 160, 3, 2), (6, 320, 1, 1)]  # MobileNetV2's (t, c, n, s)


def _bn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.{k}": (c,) for k in ("weight", "bias", *STATS[:2])} | {
        f"{name}.num_batches_tracked": ()
    }


def shufflenet_state(c2: int, conv5: int, seg: bool = False) -> dict[str, tuple[int, ...]]:
    """torchvision ShuffleNetV2's state dict shapes; `seg`: seed 001's in -> in first 1x1."""
    s = {"conv1.0.weight": (24, 3, 3, 3), **_bn("conv1.1", 24)}
    cin = 24
    for stage, (c, n) in enumerate(zip((c2, 2 * c2, 4 * c2), (4, 8, 4), strict=True), start=2):
        h = c // 2
        for i in range(n):
            p = f"stage{stage}.{i}"
            a, m = (cin, cin if seg else h) if i == 0 else (h, h)
            if i == 0:
                s |= {f"{p}.branch1.0.weight": (cin, 1, 3, 3), **_bn(f"{p}.branch1.1", cin)}
                s |= {f"{p}.branch1.2.weight": (h, cin, 1, 1), **_bn(f"{p}.branch1.3", h)}
            s |= {f"{p}.branch2.0.weight": (m, a, 1, 1), **_bn(f"{p}.branch2.1", m)}
            s |= {f"{p}.branch2.3.weight": (m, 1, 3, 3), **_bn(f"{p}.branch2.4", m)}
            s |= {f"{p}.branch2.5.weight": (h, m, 1, 1), **_bn(f"{p}.branch2.6", h)}
        cin = c
    s |= {"conv5.0.weight": (conv5, cin, 1, 1), **_bn("conv5.1", conv5)}
    return s | {"fc.weight": (1000, conv5), "fc.bias": (1000,)}


def mobilenet_v2_state() -> dict[str, tuple[int, ...]]:
    """torchvision MobileNetV2's state dict shapes."""
    s = {"features.0.0.weight": (32, 3, 3, 3), **_bn("features.0.1", 32)}
    cin, k = 32, 1
    for t, c, n, _ in _ROWS:
        for _ in range(n):
            p, hid, j = f"features.{k}.conv", cin * t, 0
            if t != 1:
                s |= {f"{p}.0.0.weight": (hid, cin, 1, 1), **_bn(f"{p}.0.1", hid)}
                j = 1
            s |= {f"{p}.{j}.0.weight": (hid, 1, 3, 3), **_bn(f"{p}.{j}.1", hid)}
            s |= {f"{p}.{j + 1}.weight": (c, hid, 1, 1), **_bn(f"{p}.{j + 2}", c)}
            cin, k = c, k + 1
    s |= {"features.18.0.weight": (1280, 320, 1, 1), **_bn("features.18.1", 1280)}
    return s | {"classifier.1.weight": (1000, 1280), "classifier.1.bias": (1000,)}


def _trainable(shapes: dict) -> int:
    return sum(math.prod(v) for k, v in shapes.items() if not k.endswith(STATS))


# (encoder, width) -> (state dict shapes, torchvision's documented total, head prefixes)
FILES = {
    ("shufflenet_v2", 0.5): (shufflenet_state(48, 1024), 1_366_792, ("conv5.", "fc.")),
    ("shufflenet_v2", 1.0): (shufflenet_state(116, 1024), 2_278_604, ("conv5.", "fc.")),
    ("shufflenet_v2", 1.5): (shufflenet_state(176, 1024), 3_503_624, ("conv5.", "fc.")),
    ("shufflenet_v2", 2.0): (shufflenet_state(244, 2048), 7_393_996, ("conv5.", "fc.")),
    ("mobilenet_v2", 1.0): (mobilenet_v2_state(), 3_504_872, ("features.18.", "classifier.")),
}


@pytest.mark.parametrize("key", list(FILES))
def test_hand_written_state_dicts_have_torchvision_counts(key):
    shapes, total, _ = FILES[key]
    assert _trainable(shapes) == total


def _tensors(shapes: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Random tensors of `shapes`: He-scaled kernels, BN near identity (variances positive)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[k] = np.zeros((), np.int64)
        elif k.endswith("running_var"):
            out[k] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif len(shape) >= 2:
            out[k] = rng.normal(0, math.sqrt(2 / math.prod(shape[1:])), shape).astype(np.float32)
        elif k.endswith(".weight"):
            out[k] = rng.uniform(0.8, 1.2, shape).astype(np.float32)  # BN scale
        else:
            out[k] = rng.normal(0, 0.1, shape).astype(np.float32)
    return out


def _arch(encoder: str, width: float = 1.0) -> Arch:
    return Arch.from_dict(
        {
            "encoder": {"name": encoder, "width": width},
            "decoder": {"name": "unet", "kind": "bilinear"},
            "resolution": [64, 64],
        }
    )


def _load(tmp_path: Path, tensors: dict, encoder: str, width: float = 1.0):
    path = write(tmp_path / "w.safetensors", tensors)
    return load(str(path), "torchvision", _arch(encoder, width))


def _flat(pretrained) -> dict[str, np.ndarray]:
    return {
        f"{c}/{k}": v
        for c, tree in pretrained.variables.items()
        for k, v in traverse_util.flatten_dict(tree, sep="/").items()
    }


def _torch_to_flax(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a


@pytest.mark.parametrize(
    "key", [("shufflenet_v2", 0.5), ("shufflenet_v2", 1.0), ("mobilenet_v2", 1.0)]
)
def test_every_encoder_tensor_arrives_once(tmp_path: Path, key):
    shapes, _, head = FILES[key]
    tensors = _tensors(shapes)
    flat = _flat(_load(tmp_path, tensors, *key))
    encoder = {k for k in tensors if not k.startswith(head) and not k.endswith(STATS[2])}
    n_params = sum(v.size for k, v in flat.items() if k.startswith("params/"))
    assert n_params == _trainable({k: shapes[k] for k in encoder})
    by_value = {_torch_to_flax(tensors[k]).tobytes(): k for k in encoder}
    used = [by_value.get(v.tobytes()) for v in flat.values()]
    assert None not in used and sorted(used) == sorted(encoder)


# Names and PyTorch shapes typed from torchvision, and where each lands in segnas's encoder.
PINNED = {
    "shufflenet_v2": {
        "conv1.0.weight": ((24, 3, 3, 3), "params/stem/conv/kernel"),
        "stage2.0.branch1.0.weight": (
            (24, 1, 3, 3),
            "params/stage2_0/shortcut_spatial/conv/kernel",
        ),
        "stage2.0.branch1.2.weight": (
            (58, 24, 1, 1),
            "params/stage2_0/shortcut_project/conv/kernel",
        ),
        "stage2.0.branch2.0.weight": ((58, 24, 1, 1), "params/stage2_0/expand/conv/kernel"),
        "stage3.7.branch2.3.weight": ((116, 1, 3, 3), "params/stage3_7/spatial/conv/kernel"),
        "stage4.3.branch2.5.weight": ((232, 232, 1, 1), "params/stage4_3/project/conv/kernel"),
        "stage4.3.branch2.6.running_var": ((232,), "batch_stats/stage4_3/project/bn/var"),
    },
    "mobilenet_v2": {
        "features.1.conv.0.0.weight": ((32, 1, 3, 3), "params/block1/spatial/conv/kernel"),
        "features.1.conv.1.weight": ((16, 32, 1, 1), "params/block1/project/conv/kernel"),
        "features.1.conv.2.bias": ((16,), "params/block1/project/bn/bias"),
        "features.2.conv.0.0.weight": ((96, 16, 1, 1), "params/block2/expand/conv/kernel"),
        "features.17.conv.2.weight": ((320, 960, 1, 1), "params/block17/project/conv/kernel"),
        "features.17.conv.3.running_mean": ((320,), "batch_stats/block17/project/bn/mean"),
    },
}


@pytest.mark.parametrize("encoder", list(PINNED))
def test_pinned_tensors_land_where_torchvision_names_say(tmp_path: Path, encoder):
    shapes, _, _ = FILES[(encoder, 1.0)]
    tensors = _tensors(shapes)
    flat = _flat(_load(tmp_path, tensors, encoder))
    for name, (shape, where) in PINNED[encoder].items():
        assert tensors[name].shape == shape
        np.testing.assert_array_equal(flat[where], _torch_to_flax(tensors[name]))


# -- a forward in PyTorch's conventions ------------------------------------------------------
def _conv(x: np.ndarray, w: np.ndarray, stride: int = 1) -> np.ndarray:
    """NCHW conv with OIHW `w`, padding k // 2 per side; dense or depthwise by `w`'s shape."""
    k, (_, c, h, wd) = w.shape[-1], x.shape
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = 0.0
    for a, b in itertools.product(range(k), range(k)):
        win = xp[:, :, a : a + h, b : b + wd]
        if w.shape[1] == c:
            out = out + np.einsum("nchw,oc->nohw", win, w[:, :, a, b])
        else:  # depthwise: [C, 1, k, k]
            out = out + win * w[None, :, 0, a, b, None, None]
    return out[:, :, ::stride, ::stride]


def _bn_act(x, t, name, act=None):
    g, b, m, v = (t[f"{name}.{k}"][None, :, None, None] for k in ("weight", "bias", *STATS[:2]))
    y = (x - m) / np.sqrt(v + EPS) * g + b
    return {None: y, "relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6)}[act]


def _shuffle(x):
    n, c, h, w = x.shape
    return x.reshape(n, 2, c // 2, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def torch_shufflenet(x, t):
    """torchvision ShuffleNetV2's stage-4 output (NCHW)."""
    x = _bn_act(_conv(x, t["conv1.0.weight"], 2), t, "conv1.1", "relu")
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = x.shape[2:]
    x = np.max([xp[:, :, a : a + h, b : b + w] for a in range(3) for b in range(3)], 0)
    x = x[:, :, ::2, ::2]
    for stage, n in zip((2, 3, 4), (4, 8, 4), strict=True):
        for i in range(n):
            p, s = f"stage{stage}.{i}", 2 if i == 0 else 1

            def branch2(y, p=p, s=s):
                y = _bn_act(_conv(y, t[f"{p}.branch2.0.weight"]), t, f"{p}.branch2.1", "relu")
                y = _bn_act(_conv(y, t[f"{p}.branch2.3.weight"], s), t, f"{p}.branch2.4")
                return _bn_act(_conv(y, t[f"{p}.branch2.5.weight"]), t, f"{p}.branch2.6", "relu")

            if i == 0:
                y = _bn_act(_conv(x, t[f"{p}.branch1.0.weight"], 2), t, f"{p}.branch1.1")
                y = _bn_act(_conv(y, t[f"{p}.branch1.2.weight"]), t, f"{p}.branch1.3", "relu")
                x = np.concatenate([y, branch2(x)], 1)
            else:
                half = x.shape[1] // 2
                x = np.concatenate([x[:, :half], branch2(x[:, half:])], 1)
            x = _shuffle(x)
    return x


def torch_mobilenet_v2(x, t):
    """torchvision MobileNetV2's 320-channel block output (NCHW)."""
    x = _bn_act(_conv(x, t["features.0.0.weight"], 2), t, "features.0.1", "relu6")
    k = 1
    for tt, _, n, s in _ROWS:
        for i in range(n):
            p, j, inp = f"features.{k}.conv", 0, x
            if tt != 1:
                x = _bn_act(_conv(x, t[f"{p}.0.0.weight"]), t, f"{p}.0.1", "relu6")
                j = 1
            stride = s if i == 0 else 1
            x = _bn_act(_conv(x, t[f"{p}.{j}.0.weight"], stride), t, f"{p}.{j}.1", "relu6")
            x = _bn_act(_conv(x, t[f"{p}.{j + 1}.weight"]), t, f"{p}.{j + 2}")
            if stride == 1 and inp.shape == x.shape:
                x = x + inp
            k += 1
    return x


FORWARDS = {"shufflenet_v2": torch_shufflenet, "mobilenet_v2": torch_mobilenet_v2}


@pytest.mark.parametrize(
    ("encoder", "width", "seg"),
    [("shufflenet_v2", 0.5, False), ("shufflenet_v2_seg", 1.0, True), ("mobilenet_v2", 1.0, False)],
)
def test_loaded_encoder_computes_what_torchvision_would(tmp_path: Path, encoder, width, seg):
    if encoder == "mobilenet_v2":
        shapes = mobilenet_v2_state()
    else:
        shapes = shufflenet_state({0.5: 48, 1.0: 116}[width], 1024, seg=seg)
    tensors = _tensors(shapes, seed=3)
    pretrained = _load(tmp_path, tensors, encoder, width)
    # 65 x 33 stays odd at every stride-2 layer: 33 x 17, 17 x 9, 9 x 5, 5 x 3, 3 x 2
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 65, 33)).astype(np.float64)
    want = FORWARDS[encoder.removesuffix("_seg")](
        x, {k: v.astype(np.float64) for k, v in tensors.items()}
    )
    family = ENCODERS[encoder]
    module = family.build(family.config(width=width), 32, ConvSpec(), "encoder")
    got = jax.jit(module.apply)(pretrained.variables, x.transpose(0, 2, 3, 1).astype(np.float32))[
        32
    ]
    got = np.asarray(got).transpose(0, 3, 1, 2)
    assert got.shape == want.shape == (1, want.shape[1], 3, 2)
    assert np.max(np.abs(got - want)) < 1e-4 * np.max(np.abs(want))


def test_seg_variant_takes_its_own_files_not_torchvisions(tmp_path: Path):
    seg = _tensors(shufflenet_state(116, 1024, seg=True))
    assert seg["stage2.0.branch2.0.weight"].shape == (24, 24, 1, 1)
    _load(tmp_path, seg, "shufflenet_v2_seg")
    tv = _tensors(shufflenet_state(116, 1024))
    with pytest.raises(UserError) as e:
        _load(tmp_path, tv, "shufflenet_v2_seg")
    assert str(e.value).endswith(
        "holds shufflenet_v2 weights, not shufflenet_v2_seg's; allowed: a shufflenet_v2_seg "
        "file, or arch.encoder.name 'shufflenet_v2'"
    )


def test_a_file_of_another_width_is_named(tmp_path: Path):
    tensors = _tensors(shufflenet_state(48, 1024))
    with pytest.raises(UserError) as e:
        _load(tmp_path, tensors, "shufflenet_v2", 1.5)
    assert str(e.value).endswith(
        "was trained at encoder width 0.5; arch.encoder.width is 1.5; allowed: "
        "arch.encoder.width 0.5, or a file of width 1.5"
    )
