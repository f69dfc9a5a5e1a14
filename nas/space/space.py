"""`Space`: per dimension (a path of `Arch.flatten()`), the values a search may pick.

    Space.from_dict({"encoder": {"name": ["mobilenet_v3_large", "efficientnet_lite0"],
                                 "width": [1.0, 1.5]},
                     "decoder": {"name": ["unet"], "kind": ["bilinear", "mlp"]},
                     "conv": {"type": ["depthwise", "group"], "group_size": [8]},
                     "resolution": [[256, 256], [512, 512]], "num_classes": 2})

A dimension may be conditional: `decoder.kind` exists for the `unet` decoder only,
`conv.group_size` applies to `group` convs only. Such a dimension is still one Optuna
parameter that every trial draws (`nas.space.encoding`); the arch ignores it where it does
not apply. Which values are *legal* for an `Arch` (any encoder the model zoo has, any positive
width) is wider than what a given `Space` lists; `Space.validate` checks that a space only lists
legal values. Schema-1 space dicts (`encoder`, `decoder`, `conv_type`, `group_size`, `width`,
`depth`, ... as flat lists) are read too.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from models.decoders.unet import KINDS as UNET_KINDS
from nas.space.arch import V1_FIELDS, Arch, _part, allowed, knob_names

# Top-level dimensions besides the parts' knobs, in canonical order.
_TOP = ("resolution", "output_stride")
_DEFAULTS: dict[str, tuple[Any, ...]] = {"output_stride": (32,)}


def _order(path: str) -> tuple[int, int, str]:
    head, _, knob = path.partition(".")
    rank = ("encoder", "decoder", "conv", *_TOP).index(head)
    return (rank, 0 if knob == "name" else 1, knob)


@dataclasses.dataclass(frozen=True)
class Space:
    """Per dimension path, the tuple of values a search may pick; `num_classes` is fixed by
    the data. `encoder.name`, `decoder.name` and `resolution` are required."""

    dims: tuple[tuple[str, tuple[Any, ...]], ...]
    num_classes: int = 2

    def __post_init__(self) -> None:
        canon = []
        for path, vals in self.dims:
            vals = tuple(tuple(v) if path == "resolution" else v for v in vals)
            canon.append((path, vals))
        object.__setattr__(self, "dims", tuple(sorted(canon, key=lambda pv: _order(pv[0]))))

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The space's dimension paths, in canonical order."""
        return tuple(p for p, _ in self.dims)

    def values(self, dimension: str) -> tuple[Any, ...]:
        """The values listed for `dimension`; ValueError naming the dimensions otherwise."""
        for path, vals in self.dims:
            if path == dimension:
                return vals
        raise allowed("dimension", dimension, ", ".join(self.dimensions))

    def searched(self) -> list[str]:
        """Dimensions with more than one value, in the canonical order."""
        return [p for p, vals in self.dims if len(vals) > 1]

    def arch(self, choices: dict[str, Any] | None = None) -> Arch:
        """The arch taking `choices` ({path: value}) and, elsewhere, each dimension's first
        value (family knobs not listed keep the family's defaults)."""
        first = {p: vals[0] for p, vals in self.dims}
        first.update(choices or {})
        base = Arch(
            encoder=_part("encoder", {"name": first["encoder.name"]}, strict=True),
            decoder=_part("decoder", {"name": first["decoder.name"]}, strict=True),
            resolution=tuple(first["resolution"]),
            num_classes=self.num_classes,
        )
        rest = {p: v for p, v in first.items() if p not in ("encoder.name", "decoder.name")}
        return base.with_values(rest)

    def validate(self) -> Space:
        """Every listed value must be legal for an Arch; raises ValueError naming it."""
        for required in ("encoder.name", "decoder.name", "resolution"):
            if required not in self.dimensions:
                raise allowed(f"space.{required}", None, "at least one value")
        for path, vals in self.dims:
            if not vals:
                raise ValueError(f"space.{path}: empty; allowed: at least one value")
        for path, vals in self.dims:
            head, _, knob = path.partition(".")
            if head in ("encoder", "decoder") and knob != "name":
                families = [n for n in self.values(f"{head}.name") if knob in knob_names(head, n)]
                if not families:
                    names = self.values(f"{head}.name")
                    raise allowed(f"space.{path}", list(vals), f"a knob of one of {list(names)}")
                pin = {f"{head}.name": families[0]}
            else:
                pin = {}
            for v in vals:
                try:
                    self.arch({**pin, path: v})
                except (TypeError, ValueError) as e:
                    raise ValueError(f"space.{e}") from None
        return self

    def size(self) -> int:
        """How many points the listed values span (conditional ones counted as if they all
        applied, so distinct archs may be fewer)."""
        return math.prod(len(vals) for _, vals in self.dims)

    def grid(self) -> Iterator[Arch]:
        """Every distinct arch of the space (full factorial), in a deterministic order."""
        dims = self.searched()
        seen: set[str] = set()
        for combo in itertools.product(*(self.values(d) for d in dims)):
            a = self.arch(dict(zip(dims, combo, strict=True)))
            if a.id not in seen:
                seen.add(a.id)
                yield a

    def replace(self, **values: Sequence[Any]) -> Space:
        """A copy with dimensions (given as paths with `__` for `.`) set to new values."""
        d = dict(self.dims)
        d.update({k.replace("__", "."): tuple(v) for k, v in values.items()})
        return Space(tuple(d.items()), self.num_classes).validate()

    def to_dict(self) -> dict[str, Any]:
        """The nested JSON form (module docstring), lists for tuples."""
        out: dict[str, Any] = {}
        for path, vals in self.dims:
            head, _, knob = path.partition(".")
            listed = [list(v) if isinstance(v, tuple) else v for v in vals]
            if knob:
                out.setdefault(head, {})[knob] = listed
            else:
                out[head] = listed
        out["num_classes"] = self.num_classes
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Space:
        """A validated Space from its nested dict (or a schema-1 flat one)."""
        if not isinstance(d, dict):
            raise allowed("space", d, "a dict of dimension -> values")
        d = dict(d)
        if "conv_type" in d or "width" in d or isinstance(d.get("encoder"), (list, tuple)):
            d = _from_v1(d)
        num_classes = d.pop("num_classes", 2)
        dims: list[tuple[str, tuple[Any, ...]]] = []
        for head, v in d.items():
            if head in ("encoder", "decoder", "conv"):
                if not isinstance(v, dict):
                    raise allowed(f"space.{head}", v, "a dict of knob -> values")
                dims += [(f"{head}.{k}", _values(f"{head}.{k}", x)) for k, x in v.items()]
            elif head in _TOP:
                dims.append((head, _values(head, v)))
            else:
                raise allowed(
                    "space", head, "encoder, decoder, conv, resolution, output_stride, num_classes"
                )
        for path, default in _DEFAULTS.items():
            if path not in dict(dims):
                dims.append((path, default))
        return cls(tuple(dims), num_classes).validate()


def _values(path: str, v: Any) -> tuple[Any, ...]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        raise allowed(f"space.{path}", v, "a list of values")
    return tuple(v)


def _from_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 flat space dict as a nested one."""
    names = set(V1_FIELDS)  # a schema-1 space lists values of the schema-1 arch fields
    unknown = sorted(set(d) - names)
    if unknown:
        raise allowed("space", unknown[0], "fields " + ", ".join(sorted(names)))
    decoders = list(d.get("decoder", ()))
    kinds = [k for k in decoders if k in UNET_KINDS]
    heads = (["unet"] if kinds else []) + [h for h in decoders if h not in UNET_KINDS]
    out: dict[str, Any] = {
        "encoder": {
            "name": list(d.get("encoder", ())),
            "width": list(d.get("width", (1.0,))),
            "depth": list(d.get("depth", (1.0,))),
        },
        "decoder": {"name": heads, **({"kind": kinds} if kinds else {})},
        "conv": {
            "type": list(d.get("conv_type", ("depthwise",))),
            "group_size": list(d.get("group_size", (8,))),
        },
        "resolution": list(d.get("resolution", ())),
        "output_stride": list(d.get("output_stride", (32,))),
        "num_classes": d.get("num_classes", 2),
    }
    return out


def resolutions(sizes: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Square resolutions from side lengths: (256, 512) -> ((256, 256), (512, 512))."""
    return tuple((s, s) for s in sizes)
