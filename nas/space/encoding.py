"""The space as Optuna parameters and as config values.

Each searched dimension is one categorical Optuna parameter named by its path
(`encoder.width`); values are stored as Optuna-storable scalars (`encode` / `decode`: a
resolution (64, 96) is "64x96").

**Conditional dimensions.** A knob that exists for one family only (`decoder.kind` of the
U-Net decoder, `conv.group_size` of group convs) is still drawn in *every* trial: the
parameter set is the same for all trials, and the arch ignores a value that does not apply
(it is also left out of the arch's id, so such trials are one candidate). Optuna's samplers
model a parameter only from the trials that hold it: NSGA-II crosses over and mutates the
parameters of its parents, and TPE fits one density per parameter; a parameter drawn only
when it applies would be missing from many parents and fall back to random sampling in
mixed-family sweeps. Always present, it is inherited and modelled like any other; in the
trials where it does not apply it is a neutral (hidden) gene.
"""

from __future__ import annotations

from typing import Any

import optuna

from nas.space.arch import Arch
from nas.space.space import Space


def _tuples(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def space_config(space: Space) -> dict[str, Any]:
    """A space as a config value: nested dicts of tuples (not lists), so that ml_collections
    can override a dimension from the command line, e.g.
    --config.search.space.encoder.width='(0.5, 1.0)'."""
    return _tuples(space.to_dict())


def encode(dim: str, value: Any) -> str | int | float:
    """An Optuna-storable scalar for a dimension value: resolution (64, 96) -> "64x96"."""
    if dim == "resolution":
        return "x".join(str(int(v)) for v in value)
    return value


def decode(dim: str, value: Any) -> Any:
    """The dimension value of an Optuna parameter: "64x96" -> (64, 96)."""
    if dim == "resolution":
        h, w = str(value).split("x")
        return (int(h), int(w))
    return value


def distributions(space: Space) -> dict[str, optuna.distributions.CategoricalDistribution]:
    """One categorical Optuna distribution per searched dimension."""
    return {
        d: optuna.distributions.CategoricalDistribution([encode(d, v) for v in space.values(d)])
        for d in space.searched()
    }


def params_of(arch: Arch, space: Space) -> dict[str, Any]:
    """The Optuna parameters of `arch` for the searched dimensions of `space`. A dimension
    that does not apply to `arch` (`decoder.kind` of LR-ASPP) takes the space's first value:
    every trial carries every parameter (module docstring)."""
    out = {}
    for d in space.searched():
        value = arch.get(d)
        out[d] = encode(d, value if value in space.values(d) else space.values(d)[0])
    return out
