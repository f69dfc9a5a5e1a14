"""data.ops: spec parsing, each op's exact effect on image + mask (and clips), determinism."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from data import ops

SEED = tf.constant([3, 4], tf.int64)


def _example(h: int = 6, w: int = 8, frames: int | None = None) -> dict[str, tf.Tensor]:
    """Image = distinct values per pixel (and frame); mask = row-major ids mod 5."""
    lead = (frames,) if frames else ()
    image = np.arange(np.prod(lead + (h, w, 3))).reshape(lead + (h, w, 3)) % 251
    mask = np.arange(np.prod(lead + (h, w))).reshape(lead + (h, w)) % 5
    ex = {"image": tf.constant(image, tf.uint8), "mask": tf.constant(mask, tf.uint8)}
    if frames:
        ex["labelled"] = tf.constant(np.arange(frames) == 1)
    return ex


def _np(ex: dict[str, tf.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in ex.items()}


# --- parsing -------------------------------------------------------------------------------


def test_parse_string_and_list_forms_agree():
    a = ops.parse("random_scale(0.5, 2.0, 0.25) | random_crop(4, 4) | random_flip | normalize")
    b = ops.parse(
        [
            "random_scale(0.5, 2.0, step=0.25)",
            "random_crop(height=4, width=4)",
            "random_flip()",
            "normalize(-1.0, 1.0)",
        ]
    )
    assert a.ops == b.ops
    assert a.ops[0] == ops.RandomScale(0.5, 2.0, 0.25)
    assert a.spec == "random_scale(0.5, 2.0, 0.25) | random_crop(4, 4) | random_flip | normalize"


def test_parse_unknown_op_lists_allowed():
    with pytest.raises(
        ValueError,
        match=r"data.preprocess_train: preprocess op: got "
        r"'random_rotate'; allowed: resize, random_scale",
    ):
        ops.parse("random_rotate(3) | normalize", field="data.preprocess_train")


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            "random_crop(4) | normalize",
            r"random_crop\(4\).*missing a required argument.*"
            r"signature: random_crop\(height, width, image_fill=0\)",
        ),
        ("random_crop(4, 4, colour=3) | normalize", "unexpected keyword argument 'colour'"),
        ("random_crop(4, x) | normalize", "malformed node"),
        ("random_crop(4, 4 | normalize", "allowed: name or name\\(args\\)"),
        ("ops.resize(4, 4) | normalize", "allowed: name or name\\(args\\)"),
        ("random_scale(2.0, 1.0) | normalize", "allowed: 0 < min_scale <= max_scale"),
        ("random_scale(0, 1.0) | normalize", "random_scale min_scale: got 0"),
        ("random_crop(0, 4) | normalize", "random_crop height: got 0; allowed: an integer >= 1"),
        ("resize(4.5, 4) | normalize", "resize height: got 4.5; allowed: an integer >= 1"),
        ("temporal_crop(0) | normalize", "temporal_crop num_frames: got 0"),
        ("random_scale('a') | normalize", "random_scale min_scale: got 'a'"),
        ("random_crop(4, 4, 300) | normalize", "image_fill: got 300"),
        ("random_crop(4, 4, (1, 2)) | normalize", "image_fill: got \\(1, 2\\)"),
        ("random_flip(1.5) | normalize", "random_flip probability: got 1.5"),
        ("photometric(hue=0.7) | normalize", "photometric hue: got 0.7; allowed: 0..0.5"),
        ("normalize(1, -1)", "allowed: low < high"),
        ("standardize(std=(1, 0, 1))", "standardize std"),
        ("temporal_crop(4, -1) | normalize", "temporal_crop start: got -1"),
        ("random_flip", "ending in exactly one normalisation op"),
        ("normalize | random_flip", "ending in exactly one normalisation op"),
        ("normalize | standardize", "ending in exactly one normalisation op"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        ops.parse(spec)


def test_output_hw_propagates():
    assert ops.parse("random_flip | normalize").output_hw((6, 8)) == (6, 8)
    assert ops.parse("random_scale(0.5, 2.0) | normalize").output_hw((6, 8)) is None
    assert ops.parse("random_scale(1, 1) | normalize").output_hw((6, 8)) == (6, 8)
    assert ops.parse("random_scale | random_crop(4, 5) | normalize").output_hw(None) == (4, 5)
    assert ops.parse("resize(3, 2) | normalize").output_hw(None) == (3, 2)


# --- each op -------------------------------------------------------------------------------


def test_resize_image_bilinear_mask_nearest():
    ex = {
        "image": tf.constant([[[0] * 3, [200] * 3]], tf.uint8),  # (1, 2, 3)
        "mask": tf.constant([[1, 4]], tf.uint8),
    }
    out = _np(ops.Resize(1, 4)(ex, SEED))
    # half-pixel centres: columns sample 0, 0.25->0.5, ... : 0, 50, 150, 200
    np.testing.assert_array_equal(out["image"][0, :, 0], [0, 50, 150, 200])
    np.testing.assert_array_equal(out["mask"], [[1, 1, 4, 4]])
    assert out["image"].dtype == np.uint8 and out["mask"].dtype == np.uint8


def test_random_scale_draws_from_the_steps_and_is_deterministic():
    op = ops.RandomScale(0.5, 1.5, 0.5)
    sizes = set()
    for s in range(40):
        out = op(_example(), tf.constant([s, 0], tf.int64))
        sizes.add(tuple(out["mask"].shape))
        assert out["image"].shape[:2] == out["mask"].shape
    assert sizes == {(3, 4), (6, 8), (9, 12)}
    a, b = op(_example(), SEED), op(_example(), SEED)
    np.testing.assert_array_equal(a["image"], b["image"])


def test_random_crop_is_a_window_of_the_input():
    ex = _example(6, 8)
    img = ex["image"].numpy()
    seen = set()
    for s in range(20):
        out = _np(ops.RandomCrop(4, 5)(ex, tf.constant([s, 1], tf.int64)))
        matches = [
            (t, l)
            for t in range(3)
            for l in range(4)
            if np.array_equal(img[t : t + 4, l : l + 5], out["image"])
        ]
        assert len(matches) == 1
        t, l = matches[0]
        np.testing.assert_array_equal(out["mask"], ex["mask"].numpy()[t : t + 4, l : l + 5])
        seen.add(matches[0])
    assert len(seen) > 3  # the offset is random


def test_random_crop_pads_with_fill_and_ignore():
    ex = _example(3, 4)
    out = _np(ops.RandomCrop(5, 6, image_fill=(10, 20, 29.6))(ex, SEED))
    np.testing.assert_array_equal(out["image"][:3, :4], ex["image"].numpy())
    np.testing.assert_array_equal(out["image"][4, 5], [10, 20, 30])
    np.testing.assert_array_equal(out["mask"][:3, :4], ex["mask"].numpy())
    assert (out["mask"][3:] == 255).all() and (out["mask"][:, 4:] == 255).all()


def test_center_crop_takes_the_centre():
    ex = _example(6, 8)
    out = _np(ops.CenterCrop(2, 4)(ex, SEED))
    np.testing.assert_array_equal(out["image"], ex["image"].numpy()[2:4, 2:6])
    np.testing.assert_array_equal(out["mask"], ex["mask"].numpy()[2:4, 2:6])


def test_random_flip_moves_image_and_mask_together():
    ex = _example()
    flipped = _np(ops.RandomFlip(1.0)(ex, SEED))
    np.testing.assert_array_equal(flipped["image"], ex["image"].numpy()[:, ::-1])
    np.testing.assert_array_equal(flipped["mask"], ex["mask"].numpy()[:, ::-1])
    same = _np(ops.RandomFlip(0.0)(ex, SEED))
    np.testing.assert_array_equal(same["image"], ex["image"].numpy())


def test_photometric_changes_colour_only():
    grey = {
        "image": tf.fill((4, 4, 3), tf.constant(128, tf.uint8)),
        "mask": tf.ones((4, 4), tf.uint8),
    }
    out = _np(ops.Photometric(brightness=32, contrast=0, saturation=0, hue=0)(grey, SEED))
    delta = out["image"].astype(int) - 128
    assert (delta == delta[0, 0, 0]).all() and 0 < abs(delta[0, 0, 0]) <= 32
    np.testing.assert_array_equal(out["mask"], np.ones((4, 4)))
    full = ops.Photometric()
    a, b = full(_example(), SEED), full(_example(), SEED)
    np.testing.assert_array_equal(a["image"], b["image"])
    c = full(_example(), tf.constant([9, 9], tf.int64))
    assert not np.array_equal(a["image"], c["image"])


def test_normalize_and_standardize():
    ex = {"image": tf.constant([[[0, 255, 51]]], tf.uint8), "mask": tf.zeros((1, 1), tf.uint8)}
    np.testing.assert_allclose(ops.Normalize()(ex, SEED)["image"], [[[-1, 1, -0.6]]], atol=1e-6)
    np.testing.assert_allclose(ops.Normalize(0, 1)(ex, SEED)["image"], [[[0, 1, 0.2]]], atol=1e-6)
    out = ops.Standardize(mean=(0, 255, 1), std=(1, 5, 10))(ex, SEED)["image"]
    np.testing.assert_allclose(out, [[[0, 0, 5]]], atol=1e-6)
    assert out.dtype == tf.float32


# --- clips ---------------------------------------------------------------------------------


def test_clip_ops_transform_every_frame_alike():
    ex = _example(6, 8, frames=3)
    chain = ops.parse("random_crop(4, 5) | random_flip(1.0) | normalize(0, 255)")
    out = _np(chain(ex, SEED))
    assert out["image"].shape == (3, 4, 5, 3) and out["mask"].shape == (3, 4, 5)
    img = ex["image"].numpy()
    # the same window and flip in every frame: find it on frame 0, check it on the others
    ((t, l),) = [
        (t, l)
        for t in range(3)
        for l in range(4)
        if np.array_equal(img[0, t : t + 4, l : l + 5][:, ::-1], out["image"][0])
    ]
    for f in range(3):
        np.testing.assert_array_equal(out["image"][f], img[f, t : t + 4, l : l + 5][:, ::-1])
    np.testing.assert_array_equal(out["labelled"], [False, True, False])


def test_temporal_crops():
    ex = _example(2, 2, frames=5)
    fixed = _np(ops.TemporalCrop(2, start=1)(ex, SEED))
    np.testing.assert_array_equal(fixed["image"], ex["image"].numpy()[1:3])
    np.testing.assert_array_equal(fixed["labelled"], [True, False])
    starts = set()
    for s in range(30):
        out = _np(ops.RandomTemporalCrop(3)(ex, tf.constant([s, 2], tf.int64)))
        assert out["mask"].shape == (3, 2, 2)
        starts.add(int(np.where((ex["mask"].numpy() == out["mask"][0]).all((1, 2)))[0][0]))
    assert starts == {0, 1, 2}


def test_temporal_crop_errors():
    with pytest.raises(ValueError, match="temporal_crop: needs a clip"):
        ops.TemporalCrop(2)(_example(), SEED)
    with pytest.raises(tf.errors.InvalidArgumentError, match="clip shorter"):
        ops.RandomTemporalCrop(9)(_example(2, 2, frames=5), SEED)


def test_chain_is_deterministic_and_seed_dependent():
    chain = ops.parse(
        "random_scale(0.5, 2.0, 0.25) | random_crop(4, 4) | random_flip | photometric | normalize"
    )
    a, b = _np(chain(_example(), SEED)), _np(chain(_example(), SEED))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    others = [_np(chain(_example(), tf.constant([s, 7], tf.int64)))["image"] for s in range(3)]
    assert not all(np.array_equal(a["image"], o) for o in others)
    assert a["image"].dtype == np.float32 and a["image"].shape == (4, 4, 3)
