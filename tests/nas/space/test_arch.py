"""nas.space.arch (and presets): JSON round-trip, stable ids, paths, every validation branch,
schema-1 files, search moves within a Space."""

import json
import random

import pytest

from nas.cost import cost
from nas.space.arch import Arch
from nas.space.presets import PRESETS, SPACES, preset, space
from nas.space.space import Space

BASE = Arch.from_dict(
    {"encoder": {"name": "mobilenet_v3_large"}, "decoder": {"name": "unet", "kind": "mlp"}}
)
V1_FINAL = (
    '{"encoder": "efficientnet_lite0", "decoder": "mlp", "conv_type": "group", '
    '"group_size": 8, "width": 1.0, "depth": 1.0, "resolution": [512, 512], '
    '"output_stride": 32, "num_classes": 2}'
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    arch = PRESETS[name]
    again = Arch.from_json(arch.to_json())
    assert again == arch and again.id == arch.id
    assert json.loads(arch.to_json())["resolution"] == list(arch.resolution)
    assert json.loads(arch.to_json())["schema"] == 2


def test_id_is_stable_and_content_addressed():
    # Pinned: a changed canonical JSON (field rename, float formatting) must be deliberate.
    assert PRESETS["seed000_final"].id == "ab589caa0f5a"
    assert BASE.id != BASE.with_values({"encoder.width": 1.5}).id
    d = BASE.to_dict()
    assert Arch.from_dict({**d, "encoder": {**d["encoder"], "width": 1}}).id == BASE.id


def test_the_v1_flat_file_is_the_same_network_as_its_preset():
    old = Arch.from_json(V1_FINAL)
    assert old == PRESETS["seed000_final"]
    c = cost(old)
    assert (c["params_train"], c["macs_train"]) == (4_369_380, 3_243_223_040)
    # Deployed: less the coarse head, 112*2 + 2 params and 16*16*112*2 MACs at 512x512.
    assert (c["params"], c["macs"]) == (4_369_380 - 226, 3_243_223_040 - 57_344)
    lraspp = Arch.from_dict({"encoder": "mobilenet_v3_large", "decoder": "lraspp"})
    assert lraspp.decoder.name == "lraspp"
    with pytest.raises(ValueError, match=r"^decoder: got 'fpn'; allowed: bilinear"):
        Arch.from_dict({"encoder": "mobilenet_v3_large", "decoder": "fpn"})
    with pytest.raises(ValueError, match=r"^arch: got 'colour'; allowed: fields encoder"):
        Arch.from_dict({"encoder": "mobilenet_v3_large", "decoder": "mlp", "colour": 1})
    with pytest.raises(ValueError, match=r"^decoder: missing; allowed: bilinear"):
        Arch.from_dict({"encoder": "mobilenet_v3_large"})


def test_a_group_size_that_does_not_apply_is_not_part_of_the_identity():
    a = BASE.with_values({"conv.group_size": 16})
    b = BASE.with_values({"conv.group_size": 4})
    assert a.id == b.id == BASE.id and "conv.group_size" not in a.flatten()
    v1 = json.loads(V1_FINAL)
    dw = [{**v1, "conv_type": "depthwise", "group_size": g} for g in (4, 16)]
    assert Arch.from_dict(dw[0]).id == Arch.from_dict(dw[1]).id
    g = BASE.with_values({"conv.type": "group", "conv.group_size": 16})
    assert g.flatten()["conv.group_size"] == 16 and g.id != BASE.id


def test_flatten_paths_and_get():
    flat = PRESETS["seed000_final"].flatten()
    assert flat == {
        "encoder.name": "efficientnet_lite0",
        "encoder.width": 1.0,
        "encoder.depth": 1.0,
        "decoder.name": "unet",
        "decoder.kind": "mlp",
        "conv.type": "group",
        "conv.group_size": 8,
        "resolution": (512, 512),
        "output_stride": 32,
        "num_classes": 2,
    }
    lraspp = PRESETS["lraspp_mobilenet_v3_large"]
    assert "decoder.kind" not in lraspp.flatten() and lraspp.get("decoder.kind") is None


def test_with_values_switches_family_and_skips_knobs_it_lacks():
    a = BASE.with_values({"decoder.name": "lraspp", "decoder.kind": "bilinear"})
    assert a.decoder.name == "lraspp" and "decoder.kind" not in a.flatten()
    b = BASE.with_values({"encoder.name": "efficientnet_lite1", "encoder.width": 1.5})
    assert b.encoder.name == "efficientnet_lite1" and b.get("encoder.width") == 1.5
    with pytest.raises(ValueError, match=r"^path: got 'colour'"):
        BASE.with_values({"colour": 1})
    with pytest.raises(ValueError, match=r"^conv.colour: got 1"):
        BASE.with_values({"conv.colour": 1})


@pytest.mark.parametrize(
    "change,field,allowed",
    [
        ({"encoder": {"name": "resnet50"}}, "encoder.name", "mobilenet_v3_large"),
        ({"decoder": {"name": "fpn"}}, "decoder.name", "lraspp"),
        ({"decoder": {"name": "unet", "kind": "fpn"}}, "decoder.kind", "bilinear"),
        ({"decoder": {"name": "lraspp", "kind": "mlp"}}, "decoder.kind", "no such knob"),
        ({"conv": {"type": "dilated"}}, "conv.type", "depthwise, group, regular"),
        ({"conv": {"type": "group", "group_size": 0}}, "conv.group_size", "[1, 1024]"),
        ({"conv": {"type": "group", "group_size": 8.0}}, "conv.group_size", "[1, 1024]"),
        ({"conv": {"type": "depthwise", "group_size": 16}}, "conv.group_size", "only with"),
        ({"encoder": {"name": "mobilenet_v3_large", "width": 0.0}}, "encoder.width", "(0, 4]"),
        ({"encoder": {"name": "mobilenet_v3_large", "width": 4.5}}, "encoder.width", "(0, 4]"),
        ({"encoder": {"name": "mobilenet_v3_large", "width": True}}, "encoder.width", "(0, 4]"),
        ({"encoder": {"name": "mobilenet_v3_large", "width": "1"}}, "encoder.width", "(0, 4]"),
        ({"encoder": {"name": "mobilenet_v3_large", "depth": 0}}, "encoder.depth", "(0, 4]"),
        ({"output_stride": 4}, "output_stride", "8, 16, 32"),
        ({"output_stride": 64}, "output_stride", "8, 16, 32"),
        ({"output_stride": 16.0}, "output_stride", "8, 16, 32"),
        ({"resolution": [256]}, "resolution", "two positive integers"),
        ({"resolution": [256, -32]}, "resolution", "two positive integers"),
        ({"resolution": [256.0, 256]}, "resolution", "two positive integers"),
        ({"resolution": [31, 256]}, "resolution", "height and width >= the output stride 32"),
        ({"resolution": [256, 0]}, "resolution", "two positive integers"),
        ({"num_classes": 0}, "num_classes", "integer >= 1"),
        ({"num_classes": 2.0}, "num_classes", "integer >= 1"),
        ({"video": {"method": "flow"}}, "video", "none yet"),
        ({"schema": 3}, "schema", "1 or 2"),
    ],
)
def test_every_validation_branch_names_field_value_and_allowed(change, field, allowed):
    with pytest.raises(ValueError) as e:
        Arch.from_dict({**BASE.to_dict(), **change})
    msg = str(e.value)
    assert msg.startswith(f"{field}: got ") and allowed in msg, msg


def test_any_resolution_from_the_output_stride_up_even_not_divisible():
    # Seed 001's GFLOPs size (23 x 40 at 1/16), and sizes divisible by nothing.
    assert BASE.replace(output_stride=16, resolution=(360, 640)).resolution == (360, 640)
    BASE.replace(resolution=(250, 257))
    BASE.replace(output_stride=8, resolution=(8, 9))
    BASE.replace(resolution=(32, 33))
    with pytest.raises(ValueError) as e:
        BASE.replace(output_stride=8, resolution=(64, 7))
    assert str(e.value) == (
        "resolution: got [64, 7]; allowed: height and width >= the output stride 8"
    )
    with pytest.raises(ValueError, match=r"got \[16, 16\]; allowed: .* >= the output stride 32"):
        BASE.replace(resolution=(16, 16))


def test_classifier_takes_any_resolution():
    assert preset("efficientnet_lite2_imagenet").resolution == (260, 260)


def test_from_json_errors():
    with pytest.raises(ValueError, match=r"^arch JSON: malformed .*line 1 column 2"):
        Arch.from_json("{,}")
    with pytest.raises(ValueError, match=r"^arch: got list; allowed: a JSON object"):
        Arch.from_json("[1, 2]")
    with pytest.raises(ValueError, match=r"^arch: got 'colour'; allowed: fields encoder"):
        Arch.from_dict({**BASE.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match=r"^decoder: got None; allowed: unet"):
        Arch.from_dict({"schema": 2, "encoder": {"name": "mobilenet_v3_large"}})
    with pytest.raises(ValueError, match=r"^conv: got"):
        Arch.from_dict({**BASE.to_dict(), "conv": {"kind": "x"}})


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
        for path, value in arch.flatten().items():
            if path in sp.dimensions:
                assert value in sp.values(path), (path, value)
    assert len({a.id for a in archs}) > 150  # thousands of points: collisions are rare
    assert {a.decoder.name for a in archs} == {"unet", "lraspp", "deeplabv3", "aam"}
    assert {a.output_stride for a in archs} == {8, 16, 32}


def test_mutate_changes_exactly_one_dimension():
    sp = SPACES["seed000"]
    rng = random.Random(0)
    arch = sp.arch()
    for _ in range(30):
        child = arch.mutate(sp, rng)
        old, new = arch.flatten(), child.flatten()
        # a conv type change also shows or hides conv.group_size: compare shared paths
        changed = [d for d in new if d in old and new[d] != old[d]]
        assert len(changed) == 1 and changed[0] in sp.searched()
        arch = child


def test_mutate_needs_a_searched_dimension():
    fixed = Space.from_dict(
        {
            "encoder": {"name": ["mobilenet_v3_small"]},
            "decoder": {"name": ["unet"]},
            "resolution": [[64, 64]],
        }
    )
    with pytest.raises(ValueError, match="nothing to mutate"):
        fixed.arch().mutate(fixed, random.Random(0))


def test_neighbours_are_the_ablation_rows():
    sp = SPACES["seed000"]
    base = sp.arch(
        {
            "encoder.name": "efficientnet_lite0",
            "decoder.kind": "mlp",
            "conv.type": "group",
            "resolution": (512, 512),
        }
    )
    rows = base.neighbours(sp, "resolution")
    assert [r.resolution for r in rows] == [(256, 256), (384, 384), (640, 640)]
    assert all(r.replace(resolution=(512, 512)) == base for r in rows)
    assert [r.get("encoder.width") for r in base.neighbours(sp, "encoder.width")] == [1.5, 2.0]
    with pytest.raises(ValueError, match=r"^dimension: got 'colour'; allowed: encoder.name"):
        base.neighbours(sp, "colour")
    # a knob the arch's conv type ignores gives no new row
    dw = base.with_values({"conv.type": "depthwise"})
    assert dw.neighbours(sp, "conv.group_size") == []
