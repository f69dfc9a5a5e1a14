"""`Space`: per dimension, the values a search may pick.

Which values are *legal* for an `Arch` (`nas.space.arch`) is wider than what a given `Space`
lists; `Space.validate` checks that a space only lists legal values.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from nas.space.arch import CONV_TYPES, DIMENSIONS, ENCODERS, SEG_DECODERS, Arch, _allowed


@dataclasses.dataclass(frozen=True)
class Space:
    """Per dimension, the tuple of values a search may pick; `num_classes` is fixed by the data."""

    encoder: tuple[str, ...] = ENCODERS[:3]
    decoder: tuple[str, ...] = SEG_DECODERS[:3]
    conv_type: tuple[str, ...] = CONV_TYPES
    group_size: tuple[int, ...] = (8,)
    width: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
    depth: tuple[float, ...] = (1.0,)
    resolution: tuple[tuple[int, int], ...] = ((256, 256), (384, 384), (512, 512), (640, 640))
    output_stride: tuple[int, ...] = (32,)
    num_classes: int = 2

    def __post_init__(self) -> None:
        for d in DIMENSIONS:
            vals = getattr(self, d)
            if d == "resolution":
                vals = tuple(tuple(r) for r in vals)
            object.__setattr__(self, d, tuple(vals))

    def values(self, dimension: str) -> tuple[Any, ...]:
        """The values listed for `dimension`; ValueError if it is not a dimension."""
        if dimension not in DIMENSIONS:
            raise _allowed("dimension", dimension, ", ".join(DIMENSIONS))
        return getattr(self, dimension)

    def searched(self) -> list[str]:
        """Dimensions with more than one value, in the canonical order."""
        return [d for d in DIMENSIONS if len(self.values(d)) > 1]

    def arch(self, **choices: Any) -> Arch:
        """The arch taking `choices` and, elsewhere, each dimension's first value."""
        base = {d: self.values(d)[0] for d in DIMENSIONS}
        base.update(choices)
        return Arch(num_classes=self.num_classes, **base).validate()

    def validate(self) -> Space:
        """Every listed value must be legal for an Arch; raises ValueError naming it."""
        for d in DIMENSIONS:
            if not self.values(d):
                raise ValueError(f"space.{d}: empty; allowed: at least one value")
        for d in DIMENSIONS:
            for v in self.values(d):
                try:
                    self.arch(**{d: v})
                except (TypeError, ValueError) as e:
                    raise ValueError(f"space.{e}") from None
        return self

    def size(self) -> int:
        """The number of archs in the full factorial grid (product of values per dimension)."""
        return math.prod(len(self.values(d)) for d in DIMENSIONS)

    def grid(self) -> Iterator[Arch]:
        """Every arch of the space (full factorial), in a deterministic order."""
        dims = self.searched()
        for combo in itertools.product(*(self.values(d) for d in dims)):
            yield self.arch(**dict(zip(dims, combo, strict=False)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON lists per dimension (resolutions as [h, w]), plus num_classes."""
        d = {
            k: list(map(list, v)) if k == "resolution" else list(v)
            for k, v in dataclasses.asdict(self).items()
            if k != "num_classes"
        }
        d["num_classes"] = self.num_classes
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Space:
        """A validated Space from a dict of its fields; ValueError on unknown fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise _allowed("space", unknown[0], "fields " + ", ".join(sorted(names)))
        return cls(**d).validate()


def resolutions(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Square resolutions from side lengths: (256, 512) -> ((256, 256), (512, 512))."""
    return tuple((s, s) for s in sizes)
