"""Segmenter shapes for every encoder x decoder, real forwards of sampled archs, train mode."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.encoders import ENCODERS
from models.layers import ConvSpec, upsample_bilinear
from nas.space.arch import Arch
from nas.space.build import build_model
from nas.space.presets import SPACES

SEG_DECODERS = ("bilinear", "channel_attention", "mlp", "lraspp")  # schema-1 names

RESOLUTIONS = [(64, 64), (128, 96), (96, 160)]  # two non-square


def _shapes(arch: Arch, batch: int = 2):
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((batch, *arch.resolution, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.apply(model.init(jax.random.key(0), x), x), x)


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("decoder", SEG_DECODERS)
def test_output_shapes_every_encoder_decoder_three_resolutions(encoder, decoder):
    for res in RESOLUTIONS:
        arch = Arch.from_dict(
            dict(
                encoder=encoder,
                decoder=decoder,
                resolution=res,
                num_classes=5,
                output_stride=16 if decoder == "lraspp" else 32,
            )
        )
        logits, aux = _shapes(arch)
        assert logits.shape == (2, *res, 5)
        h, w = res
        for s in (2, 4, 8, 16):
            assert aux[f"stride_{s}"].shape[:3] == (2, h // s, w // s)
        deepest = 16 if decoder == "lraspp" else 32
        assert max(int(k.split("_")[1]) for k in aux if k.startswith("stride_")) == deepest
        if decoder != "lraspp":
            assert aux["coarse_logits"].shape == (2, h // 32, w // 32, 5)
            assert aux["decoded"].shape[:3] == (2, h // 4, w // 4)


def test_classifier_shape_and_feature_channels():
    logits, aux = _shapes(
        Arch.from_dict(
            dict(
                encoder="mobilenet_v3_large",
                decoder="classifier",
                resolution=(224, 224),
                num_classes=1000,
            )
        )
    )
    assert logits.shape == (2, 1000)
    assert aux["stride_32"].shape == (2, 7, 7, 960)
    _, aux = _shapes(
        Arch.from_dict(dict(encoder="efficientnet_lite0", decoder="mlp", resolution=(64, 64)))
    )
    assert [aux[f"stride_{s}"].shape[-1] for s in (2, 4, 8, 16, 32)] == [16, 24, 40, 112, 320]


def test_output_stride_16_dilates_instead_of_striding():
    _, aux = _shapes(
        Arch.from_dict(
            dict(
                encoder="mobilenet_v3_large",
                decoder="lraspp",
                output_stride=16,
                resolution=(64, 96),
            )
        )
    )
    assert aux["stride_16"].shape == (2, 4, 6, 960) and "stride_32" not in aux
    assert aux["stride_8"].shape == (2, 8, 12, 40)


def _random_variables(model, x, seed):
    """Numpy-initialised variables: avoids compiling each model's initialisers (tests stay fast)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    rng = np.random.default_rng(seed)

    def leaf(path, s):
        name = jax.tree_util.keystr(path)
        if "'var'" in name or "'scale'" in name:  # BN variances and scales: positive
            return np.ones(s.shape, np.float32)
        if len(s.shape) == 1:  # biases and running means
            return (rng.standard_normal(s.shape) * 0.1).astype(np.float32)
        fan_in = int(np.prod(s.shape[:-1]))  # He-style scale keeps deep stacks finite
        return (rng.standard_normal(s.shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(leaf, shapes)


@pytest.mark.slow
def test_sampled_archs_build_and_run_forward():
    # 16 draws of the full space (every encoder and head family, OS 8/16/32) at small,
    # non-square sizes; each costs a compile, so the count is what the suite can afford.
    space, rng = SPACES["full"], random.Random(2024)
    seen = set()
    for i in range(16):
        res = rng.choice([(64, 64), (64, 96), (96, 64)])
        arch = Arch.sample(space, rng).replace(resolution=res, num_classes=3)
        seen.add((arch.encoder, arch.decoder))
        model = build_model(arch)
        x = jnp.asarray(np.random.default_rng(i).uniform(-1, 1, (1, *res, 3)), jnp.float32)
        variables = _random_variables(model, x, i)
        logits = jax.jit(lambda v, x: model.apply(v, x)[0])(variables, x)  # noqa: B023 (called here)
        assert logits.shape == (1, *res, 3), arch
        assert bool(jnp.all(jnp.isfinite(logits))), arch
        assert float(jnp.std(logits)) > 0, arch  # not a constant map
    assert len(seen) >= 10  # the sample really spans the encoder x decoder grid


@pytest.mark.parametrize("encoder", ["mobilenet_v3_small", "efficientnet_lite0"])
def test_train_mode_updates_batch_stats(encoder):
    arch = Arch.from_dict(
        dict(
            encoder=encoder,
            decoder="channel_attention",
            conv_type="group",
            group_size=4,
            resolution=(64, 64),
            num_classes=3,
        )
    )
    model = build_model(arch)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 64, 64, 3)), jnp.float32)
    variables = _random_variables(model, x, 0)
    (logits, _), updates = jax.jit(
        lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"])
    )(variables, x)
    assert logits.shape == (2, 64, 64, 3)
    before = jax.tree.leaves(variables["batch_stats"])
    after = jax.tree.leaves(updates["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=False))


def test_group_conv_changes_parameter_shapes():
    def spatial_kernel(conv_type):
        arch = Arch.from_dict(
            dict(
                encoder="mobilenet_v3_small",
                decoder="mlp",
                conv_type=conv_type,
                group_size=8,
                resolution=(64, 64),
            )
        )
        model = build_model(arch)
        v = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((1, 64, 64, 3)))
        return v["params"]["encoder"]["block2"]["spatial"]["conv"]["kernel"].shape

    assert spatial_kernel("depthwise") == (3, 3, 1, 72)
    assert spatial_kernel("group") == (3, 3, 8, 72)


def test_conv_spec_groups_and_errors():
    assert ConvSpec("depthwise", 8).groups(72) == 72
    assert ConvSpec("group", 16).groups(72) == 9  # gcd(72, 16) = 8 channels per group
    assert ConvSpec("regular").groups(72) == 1
    with pytest.raises(ValueError, match="type: got 'dilated'; allowed: depthwise, group, regular"):
        ConvSpec("dilated").validate()
    with pytest.raises(ValueError, match="group_size: got 0; allowed: an integer in"):
        ConvSpec("group", 0).validate()
    with pytest.raises(ValueError, match="shrinks; only upsampling is allowed"):
        upsample_bilinear(jnp.ones((1, 8, 8, 1)), (4, 8))
