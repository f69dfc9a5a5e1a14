"""Which whole models a lone model is timed among (the exporter's and the winners' protocol)."""

from __future__ import annotations

from nas.latency import context
from nas.space.arch import Arch
from nas.space.space import Space

ARCH = Arch.from_dict(
    dict(encoder="mobilenet_v3_small", decoder="bilinear", resolution=(64, 64), num_classes=5)
)


def test_default_companions_are_seed000_archs_at_the_models_resolution():
    picked = context.companions_for(ARCH)
    assert len(picked) == context.COMPANIONS == 7
    assert len({a.id for a in picked}) == 7 and ARCH.id not in {a.id for a in picked}
    assert {a.resolution for a in picked} == {(64, 64)}
    assert {a.num_classes for a in picked} == {5}
    assert {a.encoder.name for a in picked} <= {
        "mobilenet_v3_large",
        "mobilenet_v3_small",
        "efficientnet_lite0",
    }
    assert context.companions_for(ARCH) == picked  # seeded: the same every time


def test_a_small_space_gives_what_it_has_and_never_the_model_itself():
    space = Space.from_dict(
        dict(
            encoder=dict(name=["mobilenet_v3_small"], width=[0.5, 1.0]),
            decoder=dict(name=["unet"], kind=["bilinear", "mlp"]),
            resolution=[[32, 32]],
            num_classes=2,
        )
    )
    archs = list(space.grid())
    assert len(archs) == 4
    for a in archs:
        picked = context.companions_for(a, space)
        assert sorted(p.id for p in picked) == sorted(b.id for b in archs if b.id != a.id)
    assert all(len(context.companions_for(a, space, k=2)) == 2 for a in archs)
