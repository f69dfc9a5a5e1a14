"""nas.space.arch (and presets): JSON round-trip, stable ids, every validation branch, search
moves within a Space."""

import json
import random

import pytest

from nas.space.arch import DIMENSIONS, Arch
from nas.space.presets import PRESETS, SPACES, preset, space
from nas.space.space import Space

BASE = Arch(encoder="mobilenet_v3_large", decoder="mlp")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    arch = PRESETS[name]
    again = Arch.from_json(arch.to_json())
    assert again == arch and again.id == arch.id
    assert json.loads(arch.to_json())["resolution"] == list(arch.resolution)


def test_id_is_stable_and_content_addressed():
    # Pinned: a changed canonical JSON (field rename, float formatting) must be deliberate.
    assert PRESETS["seed000_final"].id == "71dcbd59dd27"
    assert BASE.id != BASE.replace(width=1.5).id
    assert Arch(**{**BASE.to_dict(), "resolution": [256, 256]}).id == BASE.id
    assert Arch(**{**BASE.to_dict(), "width": 1}).id == BASE.id  # int 1 == float 1.0


@pytest.mark.parametrize(
    "field,value,allowed",
    [
        ("encoder", "resnet50", "mobilenet_v3_large"),
        ("decoder", "fpn", "lraspp"),
        ("conv_type", "regular", "depthwise, group"),
        ("group_size", 3, "2, 4, 8, 16, 32"),
        ("group_size", 8.0, "2, 4, 8, 16, 32"),
        ("width", 0.0, "(0, 4.0]"),
        ("width", -1.0, "(0, 4.0]"),
        ("width", 4.5, "(0, 4.0]"),
        ("width", True, "(0, 4.0]"),
        ("width", "1.0", "(0, 4.0]"),
        ("depth", 0, "(0, 4.0]"),
        ("output_stride", 8, "16, 32"),
        ("resolution", (256,), "two positive integers"),
        ("resolution", (256, -32), "two positive integers"),
        ("resolution", (256.0, 256), "two positive integers"),
        ("resolution", (250, 256), "divisible by the output stride 32"),
        ("num_classes", 0, "integer >= 1"),
        ("num_classes", 2.0, "integer >= 1"),
    ],
)
def test_every_validation_branch_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as e:
        Arch(**{**BASE.to_dict(), field: value}).validate()
    msg = str(e.value)
    assert msg.startswith(f"{field}: got ") and allowed in msg, msg


def test_resolution_divisible_by_16_is_fine_at_output_stride_16():
    BASE.replace(output_stride=16, resolution=(272, 400))
    with pytest.raises(ValueError, match="divisible by the output stride 32"):
        BASE.replace(resolution=(272, 400))


def test_classifier_takes_any_resolution():
    assert preset("efficientnet_lite2_imagenet").resolution == (260, 260)


def test_from_json_errors():
    with pytest.raises(ValueError, match=r"^arch JSON: malformed .*line 1 column 2"):
        Arch.from_json("{,}")
    with pytest.raises(ValueError, match=r"^arch: got list; allowed: a JSON object"):
        Arch.from_json("[1, 2]")
    with pytest.raises(ValueError, match=r"^arch: got 'colour'; allowed: fields conv_type"):
        Arch.from_json('{"encoder": "mobilenet_v3_large", "decoder": "mlp", "colour": 1}')
    with pytest.raises(ValueError, match=r"^decoder: missing; allowed: bilinear"):
        Arch.from_json('{"encoder": "mobilenet_v3_large"}')
    with pytest.raises(ValueError, match=r"^width: got 0"):
        Arch.from_json('{"encoder": "mobilenet_v3_large", "decoder": "mlp", "width": 0}')


def test_unknown_preset_and_space_names():
    with pytest.raises(ValueError, match=r"^preset: got 'x'; allowed: seed000_baseline"):
        preset("x")
    with pytest.raises(ValueError, match=r"^space: got 'x'; allowed: seed000"):
        space("x")


def test_sample_is_deterministic_and_inside_the_space():
    sp = SPACES["full"]
    a = [Arch.sample(sp, random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    archs = [Arch.sample(sp, random.Random(i)) for i in range(200)]
    for arch in archs:
        for d in DIMENSIONS:
            assert getattr(arch, d) in sp.values(d)
    assert len({a.id for a in archs}) > 150  # 20160 points: collisions are rare


def test_mutate_changes_exactly_one_dimension():
    sp = SPACES["seed000"]
    rng = random.Random(0)
    arch = sp.arch()
    for _ in range(30):
        child = arch.mutate(sp, rng)
        changed = [d for d in DIMENSIONS if getattr(child, d) != getattr(arch, d)]
        assert len(changed) == 1 and changed[0] in sp.searched()
        arch = child


def test_mutate_needs_a_searched_dimension():
    fixed = Space(
        encoder=("mobilenet_v3_small",),
        decoder=("mlp",),
        conv_type=("depthwise",),
        width=(1.0,),
        resolution=((64, 64),),
    )
    with pytest.raises(ValueError, match="nothing to mutate"):
        fixed.arch().mutate(fixed, random.Random(0))


def test_neighbours_are_the_ablation_rows():
    sp = SPACES["seed000"]
    base = sp.arch(
        encoder="efficientnet_lite0", decoder="mlp", conv_type="group", resolution=(512, 512)
    )
    rows = base.neighbours(sp, "resolution")
    assert [r.resolution for r in rows] == [(256, 256), (384, 384), (640, 640)]
    assert all(r.replace(resolution=(512, 512)) == base for r in rows)
    assert [r.width for r in base.neighbours(sp, "width")] == [1.5, 2.0]
    with pytest.raises(ValueError, match=r"^dimension: got 'colour'; allowed: encoder"):
        base.neighbours(sp, "colour")
