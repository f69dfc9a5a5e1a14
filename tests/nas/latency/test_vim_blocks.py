"""VIM in the latency decomposition: the output vocabulary ("labels_vimK"), its errors, the `vim`
block of a tiny PP-MobileSeg, its signatures and the whole model it times."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from models.vim import full_labels
from nas.latency.blocks import (
    check_output,
    check_vim,
    decompose,
    micro_model,
    parse_output,
    vim_output,
    whole_model,
)
from nas.space.presets import preset

# 64 x 64 input: the head's logits are at 1/16 (AAM fuses there), 4 x 4 x 19.
ARCH = preset("pp_mobileseg_tiny").replace(resolution=(64, 64), num_classes=19)
UNET = preset("seed000_baseline").replace(resolution=(64, 64))


@functools.cache
def _blocks(output: str):
    return decompose(ARCH, output)


@pytest.mark.parametrize(
    "output, want",
    [
        ("logits", ("logits", 0)),
        ("labels", ("labels", 0)),
        ("labels_vim1", ("labels", 1)),
        ("labels_vim16", ("labels", 16)),
        ("labels_vim150", ("labels", 150)),
    ],
)
def test_parse_output(output, want):
    assert parse_output(output) == want


@pytest.mark.parametrize(
    "output", ["probs", "labels_vim0", "labels_vim016", "labels_vim", "vim16", 16]
)
def test_parse_output_rejects(output):
    with pytest.raises(ValueError) as e:
        parse_output(output)
    assert str(e.value) == (
        f"output: got {output!r}; allowed: logits, labels, labels_vimK (K an integer >= 1)"
    )


def test_vim_output_names():
    assert vim_output(16) == "labels_vim16" and vim_output(0) == "labels"


def test_check_vim_errors():
    assert check_vim(ARCH, 19) == 19 and check_output(ARCH, "labels_vim3") == ("labels", 3)
    with pytest.raises(ValueError) as e:
        check_output(ARCH, "labels_vim20")
    assert str(e.value) == (
        "output: got 'labels_vim20'; allowed: an integer in [1, 19] (the model's classes)"
    )
    with pytest.raises(ValueError) as e:
        check_vim(ARCH, -1, "--vim", off=True)
    assert str(e.value) == (
        "--vim: got -1; allowed: 0 (off) or an integer in [1, 19] (the model's classes)"
    )
    with pytest.raises(ValueError) as e:
        check_vim(UNET, 2)
    assert str(e.value) == (
        f"vim: got 2 for decoder {UNET.decoder.name!r}; allowed: VIM needs a decoder "
        "that returns its low-resolution logits: aam"
    )
    with pytest.raises(ValueError, match=r"^output: got 'labels_vim2' for decoder "):
        decompose(UNET, "labels_vim2")


def test_vim_block_replaces_the_argmax_and_the_full_upsample():
    plain, vim = _blocks("labels"), _blocks("labels_vim4")
    assert [b.path for b in plain][:-1] == [b.path for b in vim][:-1]
    last = vim[-1]
    assert (last.path, last.kind, last.fields) == ("vim", "VIM", {"k": 4})
    assert last.inputs == ((1, 4, 4, 19),) and last.outputs == ((1, 64, 64),)
    assert last.macs == 0 and last.variables == () and last.key.startswith("VIM@1x4x4x19#")
    assert plain[-1].inputs == ((1, 64, 64, 19),)  # the argmax reads the full upsample
    # The decoder's own program loses the full upsample (nobody reads it): another signature.
    dec = {
        out: next(b for b in bs if b.path == "decoder") for out, bs in [("p", plain), ("v", vim)]
    }
    assert (1, 64, 64, 19) in dec["p"].outputs and (1, 64, 64, 19) not in dec["v"].outputs
    assert dec["p"].key != dec["v"].key
    # Everything else is the same program; MACs still cover every equation.
    same = [b.key for b in plain if b.path != "decoder"][:-1]
    assert same == [b.key for b in vim if b.path != "decoder"][:-1]
    assert sum(b.macs for b in plain) == sum(b.macs for b in vim)


def test_vim_signature_depends_on_k():
    assert _blocks("labels_vim4")[-1].key != _blocks("labels_vim19")[-1].key


def test_vim_micro_model_is_vim_on_its_input():
    fn, inputs = micro_model(_blocks("labels_vim4")[-1])
    assert [x.shape for x in inputs] == [(1, 4, 4, 19)]
    labels = np.asarray(fn(*inputs))
    assert labels.shape == (1, 64, 64) and labels.dtype == np.int32
    # the 4 most frequent low-resolution winners of its (random normal) input, and only them
    low = np.argmax(inputs[0], -1).ravel()
    score = np.bincount(low, minlength=19) * 19 + 18 - np.arange(19)  # count, then lower id
    kept = set(np.argsort(-score)[:4].tolist())
    assert set(np.unique(labels).tolist()) <= kept and len(np.unique(labels)) > 1
    # K = 19 (every class): the plain upsample + argmax of the same input
    fn19, inputs19 = micro_model(_blocks("labels_vim19")[-1])
    np.testing.assert_array_equal(inputs19[0], inputs[0])
    np.testing.assert_array_equal(np.asarray(fn19(*inputs19)), full_labels(inputs[0], (64, 64)))


def test_whole_model_with_vim():
    plain_fn, (image,) = whole_model(ARCH, "labels")
    vim_fn, (image2,) = whole_model(ARCH, "labels_vim19")
    np.testing.assert_array_equal(image, image2)  # same seed: same image, same variables
    got = np.asarray(jax.jit(vim_fn)(image))
    assert got.shape == (1, 64, 64) and got.dtype == np.int32
    # K = all classes: VIM only reorders the channels, so it is the plain argmax
    np.testing.assert_array_equal(got, np.asarray(jax.jit(plain_fn)(image)))
