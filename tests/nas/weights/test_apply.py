"""Importing timm / torchvision files into MobileNetV3 and EfficientNet-Lite encoders: every
tensor arrives, in Flax's layout, where the reference names say; and every bad input is one
clear UserError."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from flax import traverse_util

from nas.errors import UserError
from nas.space.arch import Arch
from nas.weights.apply import load
from nas.weights.readers import read
from tests.nas.weights.helpers import fake_tensors, write

FIELD = "train.init_from.path"


def _arch(encoder: str, width: float = 1.0, conv: str = "depthwise") -> Arch:
    return Arch.from_dict(
        {
            "schema": 2,
            "encoder": {"name": encoder, "width": width, "depth": 1.0},
            "decoder": {"name": "unet", "kind": "bilinear"},
            "conv": {"type": conv, "group_size": 8},
            "resolution": [64, 64],
            "output_stride": 32,
            "num_classes": 2,
        }
    )


def _flat(pretrained) -> dict:
    return {
        f"{c}/{k}": v
        for c, tree in pretrained.variables.items()
        for k, v in traverse_util.flatten_dict(tree, sep="/").items()
    }


# Published encoder sizes: timm's mobilenetv3_large_100 has 5,483,032 params, of which its head
# (conv_head 960x1280 + 1280, classifier 1280x1000 + 1000) is 2,511,080; small_100: 2,542,856
# less 576x1024 + 1024 + 1024x1000 + 1000; tf_efficientnet_lite0: 4,652,008 less conv_head
# 320x1280, bn2 2x1280, classifier 1280x1000 + 1000.
ENCODER_PARAMS = {
    ("mobilenet_v3_large", "timm"): 2_971_952,
    ("mobilenet_v3_large", "torchvision"): 2_971_952,
    ("mobilenet_v3_small", "timm"): 927_008,
    ("efficientnet_lite0", "timm"): 2_958_848,
}
# Names and the reference's own (PyTorch) shapes, typed from timm / torchvision, and where
# each lands in segnas's encoder.
PINNED = {
    "mobilenet_v3_large": {
        "blocks.0.0.conv_dw.weight": ((16, 1, 3, 3), "params/block1/spatial/conv/kernel"),
        "blocks.1.0.conv_pw.weight": ((64, 16, 1, 1), "params/block2/expand/conv/kernel"),
        "blocks.1.0.bn1.running_var": ((64,), "batch_stats/block2/expand/bn/var"),
        "blocks.2.0.se.conv_reduce.weight": ((24, 72, 1, 1), "params/block4/se/reduce/kernel"),
        "blocks.2.0.se.conv_expand.bias": ((72,), "params/block4/se/expand/bias"),
        "blocks.5.2.conv_pwl.weight": ((160, 960, 1, 1), "params/block15/project/conv/kernel"),
        "blocks.6.0.conv.weight": ((960, 160, 1, 1), "params/last_conv/conv/kernel"),
        "blocks.6.0.bn1.weight": ((960,), "params/last_conv/bn/scale"),
    },
    "efficientnet_lite0": {
        "conv_stem.weight": ((32, 3, 3, 3), "params/stem/conv/kernel"),
        "blocks.0.0.conv_pw.weight": ((16, 32, 1, 1), "params/block1/project/conv/kernel"),
        "blocks.6.0.conv_dw.weight": ((1152, 1, 3, 3), "params/block16/spatial/conv/kernel"),
        "blocks.6.0.bn3.running_mean": ((320,), "batch_stats/block16/project/bn/mean"),
    },
}


def _torch_to_flax(a: np.ndarray) -> np.ndarray:
    return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a


@pytest.mark.parametrize(("encoder", "fmt"), list(ENCODER_PARAMS))
def test_every_tensor_arrives_once(tmp_path: Path, encoder: str, fmt: str) -> None:
    tensors = fake_tensors(encoder, fmt)
    p = load(str(write(tmp_path / "w.safetensors", tensors)), fmt, _arch(encoder))
    flat = _flat(p)
    n_params = sum(v.size for k, v in flat.items() if k.startswith("params/"))
    assert n_params == ENCODER_PARAMS[(encoder, fmt)]
    # a bijection: every file tensor (random, so distinct) is exactly one encoder variable
    by_value = {_torch_to_flax(v).tobytes(): k for k, v in tensors.items() if v.ndim}
    used = [by_value.get(v.tobytes()) for v in flat.values()]
    assert None not in used and len(set(used)) == len(flat)
    assert set(used) == {k for k, v in tensors.items() if v.ndim} - {"classifier.weight"}
    for name, (shape, where) in PINNED.get(encoder, {}).items() if fmt == "timm" else ():
        assert tensors[name].shape == shape
        np.testing.assert_array_equal(flat[where], _torch_to_flax(tensors[name]))


def test_torchvision_names(tmp_path: Path) -> None:
    t = fake_tensors("mobilenet_v3_large", "torchvision")
    assert t["features.16.0.weight"].shape == (960, 160, 1, 1)
    assert t["features.4.block.2.fc1.weight"].shape == (24, 72, 1, 1)
    assert t["features.1.block.0.0.weight"].shape == (16, 1, 3, 3)


def test_every_variable_of_every_pair_is_covered() -> None:
    from models.encoders import ENCODERS
    from nas.weights import apply, layout

    for name, fmt in apply.available():
        fam = ENCODERS[name]
        targets = layout.targets(fam.names[fmt](fam.fixed["variant"], fam.config()), fmt)
        shapes = apply._shapes(name, fam.config(), apply.ConvSpec())
        assert sorted((t.collection, t.path) for t in targets.values()) == sorted(shapes), name


def _error(tmp_path: Path, fmt: str, arch: Arch, tensors=None, name="w.safetensors") -> str:
    path = tmp_path / name
    if tensors is not None:
        write(path, tensors)
    with pytest.raises(UserError) as e:
        load(str(path), fmt, arch)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_large"))
    assert (
        msg == f"train.init_from.path: {str(tmp_path / 'w.safetensors')!r} is not a file; "
        "allowed: a local timm weight file"
    )


def test_unknown_format(tmp_path: Path) -> None:
    msg = _error(tmp_path, "onnx", _arch("mobilenet_v3_large"))
    assert msg == "train.init_from.format: got 'onnx'; allowed: keras, timm, torchvision, paddle"


def test_format_without_a_name_table(tmp_path: Path) -> None:
    msg = _error(tmp_path, "paddle", _arch("mobilenet_v3_large"))
    assert msg.startswith(
        "train.init_from.format: got 'paddle', which has no name table for encoder "
        "'mobilenet_v3_large' yet; allowed: mobilenet_v3_large (timm), mobilenet_v3_large "
        "(torchvision), mobilenet_v3_large (keras), "
    )
    assert msg.endswith("strideformer_tiny (paddle), strideformer_base (paddle)")


def test_wrong_container(tmp_path: Path) -> None:
    (tmp_path / "w.h5").write_bytes(b"x")
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_large"), name="w.h5")
    assert msg.endswith("is not a timm file; allowed: .safetensors")


def test_file_of_another_family(tmp_path: Path) -> None:
    t = fake_tensors("efficientnet_lite0", "timm")
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_large"), t)
    assert msg.endswith(
        "holds efficientnet_lite0 weights, not mobilenet_v3_large's; allowed: a "
        "mobilenet_v3_large file, or arch.encoder.name 'efficientnet_lite0'"
    )


def test_missing_and_unmapped_names(tmp_path: Path) -> None:
    t = fake_tensors("mobilenet_v3_small", "timm")
    t["extra.weight"] = t.pop("blocks.1.0.conv_pw.weight")
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_small"), t)
    assert msg.endswith(
        "does not fit encoder mobilenet_v3_small (timm naming): 1 missing "
        "(blocks.1.0.conv_pw.weight); 1 unmapped (extra.weight)"
    )


def test_shape_mismatch_names_the_tensor(tmp_path: Path) -> None:
    t = fake_tensors("mobilenet_v3_small", "timm")
    t["blocks.1.0.conv_pw.weight"] = np.zeros((72, 16, 3, 3), np.float32)
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_small"), t)
    assert msg.endswith(
        ": tensor 'blocks.1.0.conv_pw.weight' has shape (72, 16, 3, 3), (3, 3, 16, 72) in "
        "Flax's layout; the encoder's block2/expand/conv/kernel needs (1, 1, 16, 72)"
    )


def test_width_the_file_was_not_trained_with(tmp_path: Path) -> None:
    t = fake_tensors("mobilenet_v3_small", "timm", width=0.5)
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_small"), t)
    assert msg.endswith(
        "was trained at encoder width 0.5; arch.encoder.width is 1; allowed: "
        "arch.encoder.width 0.5, or a file of width 1"
    )
    # and at that width it loads
    load(str(tmp_path / "w.safetensors"), "timm", _arch("mobilenet_v3_small", 0.5))


def test_group_convs_cannot_take_depthwise_weights(tmp_path: Path) -> None:
    t = fake_tensors("mobilenet_v3_small", "timm")
    msg = _error(tmp_path, "timm", _arch("mobilenet_v3_small", conv="regular"), t)
    assert (
        "block1/spatial/conv/kernel needs (3, 3, 16, 16) (the file's spatial convs are "
        "depthwise; arch.conv.type is 'regular')" in msg
    )


def test_paddle_pickles_read_without_paddle(tmp_path: Path) -> None:
    arrays = {"conv.weight": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3), "step": 3}
    p = tmp_path / "m.pdparams"
    p.write_bytes(pickle.dumps(arrays))
    got = read(str(p), "paddle", FIELD)
    assert list(got) == ["conv.weight"]
    np.testing.assert_array_equal(got["conv.weight"], arrays["conv.weight"])


def test_paddle_pickles_cannot_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    p = tmp_path / "m.pdparams"
    p.write_bytes(pickle.dumps({"a": Evil()}))
    with pytest.raises(
        UserError, match=r"could not be read as paddle: builtins.print is not a numpy array"
    ):
        read(str(p), "paddle", FIELD)


def test_keras_names_of_keras_2_files() -> None:
    from nas.weights.readers import keras_name

    assert (
        keras_name("Conv/BatchNorm", "Conv/BatchNorm/moving_variance:0")
        == "conv_bn/moving_variance"
    )
    assert (
        keras_name("expanded_conv_1/squeeze_excite/Conv_1", "bias:0")
        == "expanded_conv_1_squeeze_excite_conv_1/bias"
    )
    assert (
        keras_name("expanded_conv/depthwise", "expanded_conv/depthwise/depthwise_kernel:0")
        == "expanded_conv_depthwise/kernel"
    )
    assert keras_name("conv_1_bn", "conv_1_bn/gamma") == "conv_1_bn/gamma"


def test_config_section_and_its_errors() -> None:
    from experiments.common import train_section
    from nas.weights.apply import from_config

    t = train_section(True)
    assert t.init_from.to_dict() == {"path": "", "format": ""}
    assert from_config(t, _arch("mobilenet_v3_small")) is None
    assert from_config({}, _arch("mobilenet_v3_small")) is None  # configs without the section
    t.init_from.format = "timm"
    with pytest.raises(UserError, match=r"^train.init_from.path: missing \(format 'timm' given\)"):
        from_config(t, _arch("mobilenet_v3_small"))


def test_export_flags_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    from nas.cli import main as cli

    missing = tmp_path / "none.safetensors"
    argv = ["export", "--preset", "seed000_baseline", "--out", str(tmp_path / "m.tflite")]
    for extra, message in [
        (["--init-from", str(missing)], "--init-from/--init-format: give both"),
        (
            ["--init-from", str(missing), "--init-format", "timm"],
            f"--init-from: {str(missing)!r} is not a file",
        ),
        (["--init-from", str(missing), "--init-format", "h5"], "--init-format: got 'h5'"),
    ]:
        assert cli.main(argv + extra) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and message in err, err


def test_start_state_fills_params_stats_and_ema_copies() -> None:
    import jax.numpy as jnp

    from nas.train.state import TrainState
    from nas.weights.apply import Pretrained, start_state

    def tree(v: float) -> dict:
        return {"encoder": {"stem": {"bn": {"mean": jnp.full((2,), v)}}}, "decoder": {"w": v}}

    new = Pretrained("f", "timm", {"params": {"stem": {"bn": {"mean": np.ones(2)}}}})
    new.variables["batch_stats"] = {"stem": {"bn": {"mean": np.full(2, 2.0)}}}
    for ema in (True, False):
        s = TrainState(
            step=jnp.zeros((), jnp.int32),
            params=tree(0.0),
            batch_stats=tree(0.0),
            opt_state=(),
            ema_params=tree(0.0) if ema else None,
            rng=jnp.zeros(2),
            ema_batch_stats=tree(0.0) if ema else None,
        )
        out = start_state(s, new)
        assert out.params["encoder"]["stem"]["bn"]["mean"].tolist() == [1.0, 1.0]
        assert out.batch_stats["encoder"]["stem"]["bn"]["mean"].tolist() == [2.0, 2.0]
        assert out.params["decoder"] == {"w": 0.0}  # the decoder is left as it was
        if ema:
            assert out.ema_params["encoder"]["stem"]["bn"]["mean"].tolist() == [1.0, 1.0]
            assert out.ema_batch_stats["encoder"]["stem"]["bn"]["mean"].tolist() == [2.0, 2.0]
        else:
            assert out.ema_params is None and out.ema_batch_stats is None
