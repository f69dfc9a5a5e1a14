"""Which whole models a lone model is timed among (the exporter's and the winners' protocol)."""

from __future__ import annotations

import pytest

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


def test_companion_sets_are_five_seeded_draws():
    sets = context.companion_sets(ARCH)
    assert len(sets) == context.COMPANION_SETS == 5
    assert all(len(s) == 7 and ARCH.id not in {a.id for a in s} for s in sets)
    assert len({tuple(a.id for a in s) for s in sets}) == 5  # five different draws
    assert sets == context.companion_sets(ARCH)


def test_time_among_splits_the_rounds_over_the_sets_and_rescales_each_chunk(monkeypatch):
    """Chunk i runs at speed i + 1 (the timer and the reference alike): on the table's scale
    (reference 1 ms) every sample is the timer's 2 ms."""
    chunk = [0]
    monkeypatch.setattr(context, "_timers", lambda companions, t, n, output: {})
    monkeypatch.setattr(context, "reference_timer", lambda t, n: lambda: 0.001 * chunk[0])
    real = context.measure.measure_chunk
    windows = []

    def next_chunk(timers, rounds, warmup, seed, reference, window_s):
        chunk[0] += 1
        windows.append(window_s)
        return real(timers, rounds, warmup, seed, reference, 0.0)

    monkeypatch.setattr(context.measure, "measure_chunk", next_chunk)
    raw, scaled, ref = context.time_among(
        lambda: 0.002 * chunk[0], [(ARCH,), (ARCH,), (ARCH,)], rounds=8, warmup=0, reference_ms=1.0
    )
    assert raw == [2.0] * 3 + [4.0] * 3 + [6.0] * 2  # 8 rounds: 3 + 3 + 2
    assert scaled == pytest.approx([2.0] * 8) and ref == 2.0
    assert windows == [1.0] * 3  # each chunk is timed for at least measure.WINDOW_S
    chunk[0] = 0
    raw, scaled, ref = context.time_among(lambda: 0.002, (), rounds=4, warmup=0)
    assert raw == [2.0] * 4 and scaled is None and ref is None  # alone, no table


def _point(width: float, ms: float) -> dict:
    arch = Arch.from_dict(
        dict(
            encoder=dict(name="mobilenet_v3_small", width=width),
            decoder=dict(name="unet", kind="bilinear"),
            resolution=(64, 64),
            num_classes=5,
        )
    )
    return {"id": arch.id, "arch": arch.to_dict(), "measured": {"median_ms": ms}}


def test_anchor_sets_draw_from_the_calibration_points_nearest_in_log_latency():
    widths = (0.25, 0.35, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    points = [_point(w, ms) for w, ms in zip(widths, (0.5, 1, 2, 4, 8, 16, 32, 64), strict=True)]
    me = Arch.from_dict(points[3]["arch"])
    sets, anchors = context.anchor_sets(me, points, near_ms=4.0, sets=3, k=2)
    # log2 distances from 4 ms (the model itself left out): 2 ms and 8 ms 1, 1 ms and 16 ms 2
    assert anchors == {points[i]["id"]: ms for i, ms in ((2, 2), (4, 8), (1, 1), (5, 16))}
    assert len(sets) == 3 and all(len(s) == 2 for s in sets)
    assert all(a.id in anchors and a.id != me.id for s in sets for a in s)
    assert context.anchor_sets(me, points, near_ms=4.0, sets=3, k=2)[0] == sets  # seeded


def test_anchor_scale_is_the_median_ratio_of_table_figure_to_this_chunk():
    samples = {"a": [1.0, 1.2, 1.1], "b": [4.0], "c": [3.0], "other": [9.0]}
    anchors = {"a": 1.21, "b": 4.0, "c": 3.3}  # ratios 1.1, 1.0, 1.1
    assert context.anchor_scale(samples, anchors) == pytest.approx(1.1)
    assert context.anchor_scale({"other": [1.0]}, anchors) is None


def test_time_among_puts_a_chunk_on_the_table_scale_by_its_anchors(monkeypatch):
    """The anchor runs 2x slower than its table figure in this chunk, the reference 1.5x: the
    model's samples are halved (the anchors decide, not the reference)."""
    anchor = Arch.from_dict(_point(0.5, 1.0)["arch"])
    monkeypatch.setattr(
        context, "_timers", lambda companions, t, n, output: {anchor.id: lambda: 0.002}
    )
    monkeypatch.setattr(context, "reference_timer", lambda t, n: lambda: 0.0015)
    raw, scaled, ref = context.time_among(
        lambda: 0.004,
        [(anchor,)],
        rounds=3,
        warmup=0,
        reference_ms=1.0,
        window_s=0.0,
        anchors={anchor.id: 1.0},
    )
    assert raw == pytest.approx([4.0] * 3) and scaled == pytest.approx([2.0] * 3)
    assert ref == pytest.approx(1.5)
    # without anchors: the reference's scale (1.0 / 1.5)
    _, scaled, _ = context.time_among(
        lambda: 0.004, [(anchor,)], rounds=3, warmup=0, reference_ms=1.0, window_s=0.0
    )
    assert scaled == pytest.approx([4.0 / 1.5] * 3)
