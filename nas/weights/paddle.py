"""PaddleSeg's PP-MobileSeg files: a whole model fills segnas's `aam` decoder as well.

A `.pdparams` file is either StrideFormer's backbone alone (`smb1.conv.c.weight`, ...) or a
whole PP-MobileSeg model, whose backbone names start with `backbone.` and which also holds the
AAM (`backbone.inj_module.*`) and the head (`decode_head.*`). `strip_backbone` drops the prefix,
so both read alike; the encoder's table (`models/encoders/strideformer_names.py`) ignores the
AAM and the head, and `decoder_variables` fills segnas's decoder from them:

- when the arch's decoder is not `aam`, or the file holds no AAM / head: None (the decoder
  keeps its fresh initialisation, as with every other format);
- otherwise the decoder must be the released one: the file's variant (AAM when it holds a
  third `embedding_list` conv, else AAMSx8) and both Table 4 switches on, else a one-line
  UserError naming the arch field; then every AAM / head tensor must be there and fit, checked
  and worded as the encoder's are;
- the classifier (`decode_head.conv_seg`) is dataset-specific: when its class count is not
  `arch.num_classes` it is left out and keeps its fresh initialisation (fine-tuning to another
  label set); the rest of the decoder is filled.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from models.encoders import strideformer_names
from nas.errors import UserError
from nas.space.arch import Arch
from nas.space.build import build_model
from nas.weights import layout

PREFIX = "backbone."  # a whole model's backbone, in PaddleSeg's `PPMobileSeg`
DECODER = ("inj_module.", "decode_head.")  # the AAM's names, then the head's
CLASSIFIER = "head/classify/"  # the decoder's dataset-specific layer


def strip_backbone(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`tensors` with the `backbone.` prefix dropped where a name has it."""
    return {n.removeprefix(PREFIX): a for n, a in tensors.items()}


def file_variant(tensors: Mapping[str, Any]) -> str:
    """The AAM variant a file's names say: AAM's three e convs, or AAMSx8's two."""
    return "aam" if "inj_module.embedding_list.2.conv.weight" in tensors else "aamsx8"


@functools.lru_cache(maxsize=8)
def _shapes(arch: Arch) -> dict[tuple[str, str], tuple[int, ...]]:
    """{(collection, path): shape} of `arch`'s decoder variables (shapes only)."""
    v = jax.eval_shape(build_model(arch).init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    flat = traverse_util.flatten_dict({c: t["decoder"] for c, t in v.items()}, sep="/")
    return {tuple(k.split("/", 1)): tuple(s.shape) for k, s in flat.items()}


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")


def _check_config(arch: Arch, variant: str, where: str) -> None:
    cfg, other = arch.decoder.config, "or arch.decoder.name other than aam (encoder only)"
    if cfg.variant != variant:
        raise UserError(
            f"arch.decoder.variant: got {cfg.variant!r}, but {where} holds the {variant} "
            f"decoder; allowed: {variant!r}, {other}"
        )
    for knob in ("ensemble_vote", "final_semantics"):
        if not getattr(cfg, knob):
            raise UserError(
                f"arch.decoder.{knob}: got false, but {where} holds the released decoder "
                f"(both Table 4 switches on); allowed: true, {other}"
            )


def decoder_variables(
    tensors: Mapping[str, np.ndarray], arch: Arch, where: str
) -> dict[str, Any] | None:
    """The `aam` decoder's variables ({"params": tree, "batch_stats": tree}) from a whole
    model's `tensors` (prefix stripped), or None (module docstring)."""
    mine = sorted(n for n in tensors if n.startswith(DECODER))
    if arch.decoder.name != "aam" or not mine:
        return None
    variant = file_variant(tensors)
    _check_config(arch, variant, where)
    targets = layout.targets(strideformer_names.decoder(variant), "paddle")
    missing, unmapped = sorted(set(targets) - set(mine)), sorted(set(mine) - set(targets))
    if missing or unmapped:
        raise UserError(
            f"{where} does not fit decoder aam ({variant}, paddle naming): {len(missing)} "
            f"missing ({_few(missing) or 'none'}); {len(unmapped)} unmapped "
            f"({_few(unmapped) or 'none'})"
        )
    shapes = _shapes(arch)
    flat: dict[str, dict[str, np.ndarray]] = {"params": {}, "batch_stats": {}}
    for n, t in targets.items():
        got, need = t.convert(tensors[n]), shapes.get((t.collection, t.path))
        if tuple(got.shape) == need:
            flat[t.collection][t.path] = np.asarray(got, np.float32)
        elif not (t.path.startswith(CLASSIFIER) and tuple(got.shape[:-1]) == need[:-1]):
            raise UserError(
                f"{where}: tensor {n!r} has shape {tuple(tensors[n].shape)}, "
                f"{tuple(got.shape)} in Flax's layout; the decoder's {t.path} needs {need}"
            )
    # The classifier is filled whole or not at all: its kernel and bias are one layer.
    if len([p for p in flat["params"] if p.startswith(CLASSIFIER)]) == 1:
        flat["params"] = {p: a for p, a in flat["params"].items() if not p.startswith(CLASSIFIER)}
    return {k: traverse_util.unflatten_dict(v, sep="/") for k, v in flat.items()}
