"""experiments/benchmarks/vim_agreement.py: its config, its figures on hand-made labels."""

from __future__ import annotations

import numpy as np

from experiments.benchmarks import vim_agreement as va


def test_agreement_curve_by_hand():
    full = np.array([[[0, 1, 1, 2]], [[3, 3, 3, 3]]])  # (N=2, H=1, W=4)
    vim = {
        4: full.copy(),
        1: np.array([[[0, 0, 0, 0]], [[3, 3, 3, 3]]]),  # image 0 agrees at 1 pixel of 4
        2: np.array([[[0, 1, 1, 1]], [[3, 3, 3, 3]]]),  # ... at 3 of 4
    }
    present = np.array([3, 1])  # classes in each image's low-resolution argmax
    rows = va.agreement_curve(vim, full, present)
    assert [r["k"] for r in rows] == [1, 2, 4]
    assert rows[0] == {
        "k": 1,
        "agreement": 5 / 8,
        "images_identical": 0.5,
        "worst_image": 0.25,
        "images_covered": 0.5,  # only image 1 has <= 1 class
        "agreement_covered": 1.0,
    }
    assert (rows[1]["agreement"], rows[1]["worst_image"]) == (7 / 8, 0.75)
    assert rows[2]["agreement"] == rows[2]["images_identical"] == rows[2]["images_covered"] == 1.0


def test_agreement_covered_is_none_without_covered_images():
    full = np.zeros((2, 2, 2), np.int32)
    (row,) = va.agreement_curve({1: full}, full, np.array([3, 2]))
    assert row["images_covered"] == 0.0 and row["agreement_covered"] is None


def test_low_classes():
    low = np.zeros((2, 2, 2, 3), np.float32)
    low[0, 0, 0, 0] = low[0, 0, 1, 1] = low[0, 1, :, 1] = 1.0  # classes 0, 1, 1, 1
    low[1, ..., 2] = 5.0  # class 2 everywhere
    np.testing.assert_array_equal(va.low_classes(low), [2, 1])


def test_label_logits_by_hand():
    mask = np.array([[[0, 0, 1, 2], [0, 0, 2, 2]], [[255, 1, 1, 1], [1, 1, 1, 1]]])  # (2, 2, 4)
    logits = va.label_logits(mask, 3, (1, 2))  # two 2x2 cells per image
    assert logits.shape == (2, 1, 2, 3)
    shares = [[[1.0, 0.0, 0.0], [0.0, 0.25, 0.75]], [[0.25, 0.75, 0.0], [0.0, 1.0, 0.0]]]
    np.testing.assert_allclose(logits[:, 0], np.log(np.array(shares) + 1e-3), atol=1e-6)


def test_config():
    c = va.make_config(False, 300, 128, "/tmp/unused")
    assert (c.arch.encoder.name, c.arch.decoder.name, c.arch.decoder.variant) == (
        "strideformer_tiny",
        "aam",
        "aam",
    )
    assert c.arch.num_classes == 33 and tuple(c.arch.resolution) == (128, 128)
    assert c.data.name == "toy_scenes/many" and c.data.data_dir == "/tmp/unused"
    kw = c.data.builder_kwargs
    assert (kw.height, kw.train_size, kw.validation_size, kw.test_size) == (128, 2000, 200, 0)
    t = c.train
    assert (t.steps, t.batch_size, t.warmup_steps, t.max_minutes) == (300, 8, 50, 11.0)
    q = va.make_config(True, 4, 64, "/tmp/unused")
    assert (q.train.batch_size, q.train.warmup_steps, q.train.max_minutes) == (4, 0, 0.0)
    assert q.data.builder_kwargs.train_size == 64 and q.wandb.mode == "disabled"
