"""Filling an encoder's variables from a pretrained file: `load` checks and converts, the pure
`with_pretrained` / `start_state` put the result into a model's variables or a `TrainState`.

    pretrained = load(path, fmt, arch)     # UserError on any mismatch; or from_config(train, arch)
    state = start_state(state, pretrained)                     # params, batch_stats, EMA copies

`load` reads the file (`nas.weights.readers`), expands the encoder family's name table for the
format (`models/encoders/<family>_names.py`) into tensor names and layouts
(`nas.weights.layout`), and checks, in this order, each failure one line: every file tensor is
mapped and every mapped one present (the classifier head's and BN counters excepted), naming
the missing and unmapped ones, or the encoder family the file does fit; every tensor's shape
after layout conversion, naming the tensor and both shapes, or the width multiplier the file
does fit. Only the encoder is filled, the decoder keeping its fresh initialisation, except from
a whole PP-MobileSeg `paddle` file into the `aam` decoder (`nas.weights.paddle`), the one
format whose files hold a segnas decoder.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from models.encoders import ENCODERS
from models.layers import ConvSpec
from nas.errors import UserError
from nas.space.arch import Arch
from nas.weights import layout, paddle, readers

# Widths tried when shapes do not fit, to name the multiplier a file was trained at.
WIDTHS: tuple[float, ...] = (0.35, 0.5, 0.75, 1.0, 1.25, 1.4, 1.5, 2.0)


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """An encoder's variables from a file: `variables` is {"params": tree, "batch_stats":
    tree} of float32 numpy arrays, in the layout of the model's `encoder` subtree; `decoder`
    likewise for the `decoder` subtree, None when the file fills no decoder."""

    path: str
    fmt: str
    variables: dict[str, Any]
    decoder: dict[str, Any] | None = None


def available() -> list[tuple[str, str]]:
    """The (encoder, format) pairs that have a name table."""
    return [(name, fmt) for name, fam in ENCODERS.items() for fmt in fam.names]


FIELDS = ("train.init_from.path", "train.init_from.format")


def load(path: str, fmt: object, arch: Arch, fields: tuple[str, str] = FIELDS) -> Pretrained:
    """`arch`'s encoder variables from the `fmt` file at `path` (checks: module docstring);
    `fields` name the path and the format (config fields or flags) in every error."""
    fmt = readers.check_format(fmt, fields[1])
    name = arch.encoder.name
    if fmt not in ENCODERS[name].names:
        pairs = ", ".join(f"{e} ({f})" for e, f in available())
        raise UserError(
            f"{fields[1]}: got {fmt!r}, which has no name table for encoder {name!r} yet; "
            f"allowed: {pairs}"
        )
    tensors = readers.read(path, fmt, fields[0])
    where, decoder = f"{fields[0]}: {path}", None
    if fmt == "paddle":  # a whole PP-MobileSeg model's backbone names start with `backbone.`
        tensors = paddle.strip_backbone(tensors)
    variables = _match(tensors, name, arch.encoder.config, arch.conv, fmt, where)
    if fmt == "paddle":
        decoder = paddle.decoder_variables(tensors, arch, where)
    return Pretrained(str(path), fmt, variables, decoder)


def from_config(train: Mapping[str, Any], arch: Arch) -> Pretrained | None:
    """The pretrained encoder `train.init_from` (a `path` and a `format`) asks for; None when
    its path and format are empty (random initialisation) or the section is absent."""
    init = train.get("init_from") or {}
    path, fmt = init.get("path") or "", init.get("format") or ""
    if not path and not fmt:
        return None
    if not path:
        raise UserError(
            f"{FIELDS[0]}: missing (format {fmt!r} given); allowed: a local weight file, or "
            "an empty format for a random initialisation"
        )
    return load(path, fmt, arch)


@functools.lru_cache(maxsize=32)
def _shapes(name: str, config: Any, conv: ConvSpec) -> dict[tuple[str, str], tuple[int, ...]]:
    """{(collection, path): shape} of the encoder's variables (shapes only, nothing computed)."""
    family = ENCODERS[name]
    module = family.build(config or family.config(), 32, conv, "encoder")
    v = jax.eval_shape(module.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))
    flat = traverse_util.flatten_dict(v, sep="/")
    return {tuple(k.split("/", 1)): tuple(s.shape) for k, s in flat.items()}


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f", ... ({len(names)} in all)" if len(names) > 4 else "")


def _names(tensors: Mapping[str, np.ndarray], name: str, config: Any, fmt: str):
    family = ENCODERS[name]
    targets = layout.targets(family.names[fmt](family.fixed["variant"], config), fmt)
    skip, ignored = layout.SKIPPED[fmt], family.ignored.get(fmt, ())
    names = {n for n in tensors if not (skip and n.endswith(skip)) and not n.startswith(ignored)}
    return targets, sorted(set(targets) - names), sorted(names - set(targets))


def _mismatches(tensors, targets, shapes) -> list[tuple[str, str, tuple, tuple]]:
    """(file name, encoder path, converted shape, needed shape) of every misfit tensor."""
    bad = []
    for n, t in targets.items():
        got = tuple(t.convert(tensors[n]).shape)
        need = shapes.get((t.collection, t.path))
        if got != need:
            bad.append((n, t.path, got, need))
    return bad


def _fits(tensors, name: str, config: Any, conv: ConvSpec, fmt: str) -> bool:
    if fmt not in ENCODERS[name].names:
        return False
    targets, missing, unmapped = _names(tensors, name, config, fmt)
    return not (missing or unmapped) and not _mismatches(
        tensors, targets, _shapes(name, config, conv)
    )


def _legal(config: Any) -> bool:
    try:
        config.validate()
    except ValueError:
        return False
    return True


def _other_family(tensors, name: str, fmt: str) -> str | None:
    for other, family in ENCODERS.items():
        if other != name and _fits(tensors, other, family.config(), ConvSpec(), fmt):
            return other
    return None


def _match(tensors, name: str, config: Any, conv: ConvSpec, fmt: str, where: str) -> dict:
    config = config or ENCODERS[name].config()
    targets, missing, unmapped = _names(tensors, name, config, fmt)
    bad = [] if missing or unmapped else _mismatches(tensors, targets, _shapes(name, config, conv))
    if missing or unmapped or bad:
        other = _other_family(tensors, name, fmt)
        if other:
            raise UserError(
                f"{where} holds {other} weights, not {name}'s; allowed: a {name} file, "
                f"or arch.encoder.name {other!r}"
            )
    if missing or unmapped:
        raise UserError(
            f"{where} does not fit encoder {name} ({fmt} naming): {len(missing)} missing "
            f"({_few(missing) or 'none'}); {len(unmapped)} unmapped ({_few(unmapped) or 'none'})"
        )
    if bad:
        for w in WIDTHS:
            other = dataclasses.replace(config, width=w)
            # A family with a table of widths (ShuffleNetV2) has no model at the others.
            if w != config.width and _legal(other) and _fits(tensors, name, other, conv, fmt):
                raise UserError(
                    f"{where} was trained at encoder width {w:g}; arch.encoder.width is "
                    f"{config.width:g}; allowed: arch.encoder.width {w:g}, or a file of width "
                    f"{config.width:g}"
                )
        n, path, got, need = bad[0]
        hint = ""
        if path.endswith("spatial/conv/kernel") and conv.type != "depthwise":
            hint = f" (the file's spatial convs are depthwise; arch.conv.type is {conv.type!r})"
        raise UserError(
            f"{where}: tensor {n!r} has shape {tuple(tensors[n].shape)}, {got} in Flax's "
            f"layout; the encoder's {path} needs {need}{hint}"
        )
    flat: dict[str, dict[str, np.ndarray]] = {"params": {}, "batch_stats": {}}
    for n, t in targets.items():
        flat[t.collection][t.path] = np.asarray(t.convert(tensors[n]), np.float32)
    return {k: traverse_util.unflatten_dict(v, sep="/") for k, v in flat.items()}


def _merge(tree: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`tree` with the leaves `new` has replaced (cast to each leaf's dtype)."""
    out = dict(tree)
    for k, v in new.items():
        out[k] = _merge(tree[k], v) if isinstance(v, Mapping) else jnp.asarray(v, tree[k].dtype)
    return out


def with_pretrained(variables: Mapping[str, Any], pretrained: Pretrained) -> dict[str, Any]:
    """`variables` ({"params": ..., "batch_stats": ...} of a segnas model) with the encoder's
    replaced by `pretrained`'s, and the decoder's where it holds some (else left as they are)."""
    out = dict(variables)
    for part, trees in (("encoder", pretrained.variables), ("decoder", pretrained.decoder or {})):
        for coll, tree in trees.items():
            if tree:
                out[coll] = {**out[coll], part: _merge(out[coll][part], tree)}
    return out


def start_state(state: Any, pretrained: Pretrained) -> Any:
    """A fresh `TrainState` starting from `pretrained`: params, BN statistics and, when EMA is
    on, their EMA copies (the optimizer's moments are zeros whatever the params, so they stay)."""
    v = with_pretrained({"params": state.params, "batch_stats": state.batch_stats}, pretrained)
    ema = state.ema_params is not None
    return state.replace(
        params=v["params"],
        batch_stats=v["batch_stats"],
        ema_params=v["params"] if ema else None,
        ema_batch_stats=v["batch_stats"] if ema else state.ema_batch_stats,
    )
