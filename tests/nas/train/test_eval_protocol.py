"""train.eval_protocol: `label` (logits upsampled to the labels) vs `output` (labels shrunk to
the logits), each on a hand-computed example, and its validation."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import metrics as seg_metrics
from experiments.common import train_section
from models.layers import upsample_bilinear
from nas.errors import UserError
from nas.train.plan import Plan
from nas.train.steps import EVAL_PROTOCOLS, make_eval_step, resize_logits

# The class-1 logit of a 2x2 output (class 0's is 0): class 1 in the top-left pixel only.
MARGIN = np.array([[4.0, -1.0], [-1.0, -1.0]], np.float32)
# 4x4 ground truth: class 1 in the top-left 3x3 block, the corner pixel void.
LABELS = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 255]], np.int32)


class FixedLogits:
    """A 'model' whose logits are MARGIN at a 2x2 input, whatever the image."""

    def apply(self, variables, images, train):
        assert images.shape[1:3] == (2, 2) and not train  # the images were fitted to hw
        logits = np.stack([np.zeros_like(MARGIN), MARGIN], -1)
        return jnp.broadcast_to(logits, (images.shape[0], 2, 2, 2)), {}


STATE = SimpleNamespace(params={}, batch_stats={}, ema_params=None)
BATCH = {"image": jnp.zeros((1, 4, 4, 3)), "mask": jnp.asarray(LABELS[None])}


def confusion(protocol: str) -> np.ndarray:
    step = make_eval_step(FixedLogits(), 2, (2, 2), use_ema=False, protocol=protocol)
    return np.asarray(jax.jit(lambda b: step(STATE, b))(BATCH))


def test_label_protocol_scores_upsampled_logits_on_the_full_resolution_labels():
    # Upsampled 2 -> 4 (half-pixel), each axis weighs the two rows / columns (1, 0),
    # (.75, .25), (.25, .75), (0, 1): the margin is -1 + 5 w_i w_j with w = (1, .75, .25, 0),
    # rows [4, 2.75, .25, -1], [2.75, 1.8125, -.0625, -1], [.25, -.0625, -.6875, -1], [-1] * 4:
    # class 1 on 6 pixels (nearest-neighbour upsampling would give the top-left 2x2 block).
    # Ground truth class 0: the 6 pixels of the last column and row but the void corner, all
    # predicted 0; class 1: 9 pixels, 6 of them predicted 1; the void corner counts nowhere.
    cm = confusion("label")
    np.testing.assert_array_equal(cm, [[6, 0], [3, 6]])
    np.testing.assert_allclose(seg_metrics.iou_per_class(cm), [6 / 9, 6 / 9])
    assert seg_metrics.summarize(cm)["miou"] == pytest.approx(2 / 3)


def test_output_protocol_scores_logits_on_labels_shrunk_to_their_size():
    # Nearest neighbour 4 -> 2 reads pixel centres (1, 1), (1, 3), (3, 1), (3, 3): labels
    # [[1, 0], [0, void]] against predictions [[1, 0], [0, 0]]: all three counted pixels right.
    cm = confusion("output")
    np.testing.assert_array_equal(cm, [[2, 0], [0, 1]])
    assert seg_metrics.summarize(cm)["miou"] == 1.0


def test_upsampling_is_the_models_half_pixel_bilinear():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 5, 4))
    np.testing.assert_allclose(
        resize_logits(x, (7, 11)), upsample_bilinear(x, (7, 11)), rtol=1e-5, atol=1e-6
    )
    assert resize_logits(x, (3, 5)) is x


def test_logits_larger_than_the_labels_are_shrunk_antialiased():
    # 4 -> 2 per axis: output 0 sits at input 0.5, triangle filter twice as wide, weights
    # (.75, .75, .25, 0) / 1.75; columns (3, -1, -1, -1) -> (1.25 / 1.75, -1.75 / 1.75)
    x = jnp.broadcast_to(jnp.asarray([3.0, -1.0, -1.0, -1.0])[None, None, :, None], (1, 4, 4, 1))
    out = np.asarray(resize_logits(x, (2, 2)))[0, :, :, 0]
    np.testing.assert_allclose(out, [[5 / 7, -1.0], [5 / 7, -1.0]], rtol=1e-6)


def test_a_bad_protocol_is_refused():
    t = train_section(True, eval_protocol="full")
    with pytest.raises(UserError) as e:
        Plan.from_config(t)
    assert str(e.value) == (
        "train.eval_protocol: got 'full'; allowed: 'label' (logits upsampled to the labels' "
        "resolution) or 'output' (labels shrunk to the model's output resolution, seed 000's "
        "protocol)"
    )
    t.eval_protocol = "output"
    assert Plan.from_config(t).eval_protocol == "output"
    del t["eval_protocol"]  # a config from before the field: the default
    assert Plan.from_config(t).eval_protocol == "label" == EVAL_PROTOCOLS[0]
    with pytest.raises(ValueError, match="protocol: got 'full'; allowed: label, output"):
        make_eval_step(FixedLogits(), 2, (2, 2), use_ema=False, protocol="full")


@pytest.mark.parametrize("protocol", ["output", None])
def test_the_loop_evaluates_with_the_configured_protocol(smoke, tmp_path, monkeypatch, protocol):
    import nas.train.loop as loop

    asked = []

    def spy(*args, **kwargs):
        asked.append(args[5] if len(args) > 5 else kwargs.get("protocol", "label"))
        raise RuntimeError("stop here")

    monkeypatch.setattr(loop, "make_eval_step", spy)
    if protocol is None:
        del smoke.train["eval_protocol"]
    else:
        smoke.train.eval_protocol = protocol
    result = loop.train_and_evaluate(smoke, tmp_path)
    assert result.status == "failed" and result.message == "RuntimeError: stop here"
    assert asked == [protocol or "label"]
