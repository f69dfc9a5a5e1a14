"""The space as Optuna parameters and as config values.

Each searched dimension is one categorical Optuna parameter named by its label; values are
stored as Optuna-storable scalars (`encode` / `decode`: a resolution (64, 96) is "64x96").
"""

from __future__ import annotations

from typing import Any

import optuna

from nas.space.arch import Arch
from nas.space.space import Space


def space_config(space: Space) -> dict[str, Any]:
    """A space as a config value: tuples (not lists), so that ml_collections can override a
    dimension from the command line, e.g. --config.search.space.width='(0.5, 1.0)'."""
    d = space.to_dict()
    return {
        k: (
            tuple(tuple(r) for r in v)
            if k == "resolution"
            else tuple(v)
            if isinstance(v, list)
            else v
        )
        for k, v in d.items()
    }


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
    """The Optuna parameters of `arch` for the searched dimensions of `space`."""
    return {d: encode(d, getattr(arch, d)) for d in space.searched()}
