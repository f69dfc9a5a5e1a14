"""nas.space.space: a Space's grid, size, dict round trip, conditional dimensions, schema-1
dicts and validation."""

import pytest

from nas.space.presets import SPACES
from nas.space.space import Space

TINY = {
    "encoder": {"name": ["mobilenet_v3_small"]},
    "decoder": {"name": ["unet"]},
    "resolution": [[64, 64]],
}


def test_space_grid_size_and_round_trip():
    sp = SPACES["seed000"]
    assert sp.size() == 3 * 3 * 3 * 2 * 4 == len(list(sp.grid()))
    assert Space.from_dict(sp.to_dict()) == sp
    assert sp.searched() == [
        "encoder.name",
        "encoder.width",
        "decoder.kind",
        "conv.type",
        "resolution",
    ]


def test_conditional_dimensions_collapse_in_the_grid():
    sp = Space.from_dict(
        {
            **TINY,
            "decoder": {"name": ["unet", "lraspp"], "kind": ["bilinear", "mlp"]},
            "conv": {"type": ["depthwise", "group"], "group_size": [4, 8]},
        }
    )
    assert sp.size() == 16
    # unet: 2 kinds x (1 depthwise + 2 group sizes); lraspp: 1 x 3 -> 6 + 3
    assert len(list(sp.grid())) == 9


def test_schema_1_space_dicts_are_read():
    old = {
        "encoder": ["mobilenet_v3_large"],
        "decoder": ["bilinear", "mlp", "lraspp"],
        "conv_type": ["depthwise"],
        "group_size": [8],
        "width": [1.0, 0.5],
        "depth": [1.0],
        "resolution": [[64, 64]],
        "output_stride": [32],
        "num_classes": 3,
    }
    sp = Space.from_dict(old)
    assert sp.values("decoder.name") == ("unet", "lraspp")
    assert sp.values("decoder.kind") == ("bilinear", "mlp")
    assert sp.values("encoder.width") == (1.0, 0.5) and sp.num_classes == 3


@pytest.mark.parametrize(
    "change,message",
    [
        ({"encoder": {"name": ["vgg"]}}, r"^space.encoder.name: got 'vgg'"),
        ({"resolution": [[16, 100]]}, r"^space.resolution: got \[16, 100\]; allowed: .* >= "),
        ({"output_stride": [8, 4]}, r"^space.output_stride: got 4; allowed: 8, 16, 32"),
        (
            {"encoder": {"name": ["mobilenet_v3_small"], "width": []}},
            r"^space.encoder.width: empty",
        ),
        ({"decoder": {"name": ["lraspp"], "kind": ["mlp"]}}, r"^space.decoder.kind: got \['mlp'\]"),
        ({"colour": ["red"]}, r"^space: got 'colour'"),
        ({"encoder": ["mobilenet_v3_small"], "colour": 1}, r"^space: got 'colour'"),
        ({"conv": ["depthwise"]}, r"^space.conv: got \['depthwise'\]"),
        ({"resolution": "64x64"}, r"^space.resolution: got '64x64'"),
    ],
)
def test_space_validation(change, message):
    with pytest.raises(ValueError, match=message):
        Space.from_dict({**TINY, **change})


def test_a_space_needs_encoder_decoder_and_resolution():
    with pytest.raises(ValueError, match=r"^space.resolution: got None; allowed: at least one"):
        Space.from_dict({k: v for k, v in TINY.items() if k != "resolution"})


def test_output_strides_8_16_32_and_sizes_not_divisible_by_them():
    sp = Space.from_dict(
        {**TINY, "resolution": [[360, 640], [45, 75]], "output_stride": [8, 16, 32]}
    )
    archs = list(sp.grid())
    assert len(archs) == 6
    assert {(a.resolution, a.output_stride) for a in archs} == {
        (r, os) for r in ((360, 640), (45, 75)) for os in (8, 16, 32)
    }
