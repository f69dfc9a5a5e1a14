"""`Arch`: one point of the joint search space, a frozen value that validates itself.

A `Space` lists, per dimension, the values a search may pick; each dimension has a stable,
human-readable label (`encoder`, `decoder`, `conv_type`, ...) that is also the field name of
`Arch`, the key in its JSON, in Optuna parameters and in W&B configs. An `Arch` is a frozen,
JSON-round-tripping value that validates itself and carries a stable id (a hash of its
canonical JSON), so two machines that sample the same architecture agree on its name.

Which values are *legal* for an `Arch` (any encoder the model zoo has, any positive width) is
wider than what a given `Space` lists (what a search may pick); `Arch.validate` checks the
former, `Space.validate` checks that a space only lists legal values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.space.space import Space

ENCODERS: tuple[str, ...] = (
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
)
# Segmentation decoders a search may pick; "classifier" is the ImageNet head used only by the
# *_imagenet presets, so that encoders can be pinned against published classification counts.
SEG_DECODERS: tuple[str, ...] = ("bilinear", "channel_attention", "mlp", "lraspp")
DECODERS: tuple[str, ...] = SEG_DECODERS + ("classifier",)
CONV_TYPES: tuple[str, ...] = ("depthwise", "group")
GROUP_SIZES: tuple[int, ...] = (2, 4, 8, 16, 32)
OUTPUT_STRIDES: tuple[int, ...] = (16, 32)
MAX_WIDTH = 4.0
MAX_DEPTH = 4.0

# The dimensions a Space may vary, in a fixed order (the order of Optuna params and tables).
DIMENSIONS: tuple[str, ...] = (
    "encoder",
    "decoder",
    "conv_type",
    "group_size",
    "width",
    "depth",
    "resolution",
    "output_stride",
)


def _allowed(field: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{field}: got {value!r}; allowed: {allowed}")


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture: every knob of a segmentation model, as plain values.

    `group_size` (channels per group) only matters when `conv_type == "group"`; a layer whose
    channel count it does not divide uses gcd(channels, group_size) channels per group.
    `width` / `depth` multiply the encoder family's own coefficients (EfficientNet-Lite2 at
    width 1.5 has width coefficient 1.1 * 1.5). `resolution` is (height, width).
    """

    encoder: str
    decoder: str
    conv_type: str = "depthwise"
    group_size: int = 8
    width: float = 1.0
    depth: float = 1.0
    resolution: tuple[int, int] = (256, 256)
    output_stride: int = 32
    num_classes: int = 2

    def __post_init__(self) -> None:
        # JSON gives lists; keep the value hashable and canonical.
        if isinstance(self.resolution, list):
            object.__setattr__(self, "resolution", tuple(self.resolution))

    def validate(self) -> Arch:
        """Raises ValueError naming the field, the value and what is allowed; returns self."""
        if self.encoder not in ENCODERS:
            raise _allowed("encoder", self.encoder, ", ".join(ENCODERS))
        if self.decoder not in DECODERS:
            raise _allowed("decoder", self.decoder, ", ".join(DECODERS))
        if self.conv_type not in CONV_TYPES:
            raise _allowed("conv_type", self.conv_type, ", ".join(CONV_TYPES))
        if type(self.group_size) is not int or self.group_size not in GROUP_SIZES:
            raise _allowed("group_size", self.group_size, ", ".join(map(str, GROUP_SIZES)))
        for name, top in (("width", MAX_WIDTH), ("depth", MAX_DEPTH)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= top:
                raise _allowed(name, v, f"a number in (0, {top}]")
        if type(self.output_stride) is not int or self.output_stride not in OUTPUT_STRIDES:
            raise _allowed("output_stride", self.output_stride, ", ".join(map(str, OUTPUT_STRIDES)))
        res = self.resolution
        if (
            not isinstance(res, tuple)
            or len(res) != 2
            or any(type(r) is not int or r <= 0 for r in res)
        ):
            raise _allowed("resolution", res, "[height, width], two positive integers")
        # The classifier ends in global pooling and takes any size (EfficientNet-Lite2 is 260²).
        if self.decoder != "classifier" and any(r % self.output_stride for r in res):
            raise _allowed(
                "resolution",
                list(res),
                f"height and width divisible by the output stride {self.output_stride}",
            )
        if type(self.num_classes) is not int or self.num_classes < 1:
            raise _allowed("num_classes", self.num_classes, "an integer >= 1")
        return self

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON values: resolution a list, width and depth floats."""
        d = dataclasses.asdict(self)
        d["resolution"] = list(self.resolution)
        d["width"] = float(self.width)
        d["depth"] = float(self.depth)
        return d

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces; equal archs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Arch:
        """A validated Arch from a dict of its fields; ValueError on unknown or missing ones."""
        if not isinstance(d, dict):
            raise ValueError(f"arch: got {type(d).__name__}; allowed: a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise _allowed("arch", unknown[0], "fields " + ", ".join(sorted(names)))
        missing = [n for n in ("encoder", "decoder") if n not in d]
        if missing:
            raise ValueError(
                f"{missing[0]}: missing; allowed: "
                + ", ".join(ENCODERS if missing[0] == "encoder" else DECODERS)
            )
        return cls(**d).validate()

    @classmethod
    def from_json(cls, text: str) -> Arch:
        """A validated Arch from JSON text; ValueError if malformed or invalid."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"arch JSON: malformed ({e.msg} at line {e.lineno} column "
                f"{e.colno}); allowed: a JSON object of Arch fields"
            ) from None
        return cls.from_dict(d)

    @property
    def id(self) -> str:
        """Stable 12-hex-digit id: sha256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> Arch:
        """A copy with `changes` applied, validated (ValueError if illegal)."""
        return dataclasses.replace(self, **changes).validate()

    # -- search moves (the space says which values exist) -------------------------------
    @classmethod
    def sample(cls, space: Space, rng: random.Random) -> Arch:
        """A uniformly random point of `space`."""
        return space.arch(**{d: rng.choice(space.values(d)) for d in space.searched()})

    def mutate(self, space: Space, rng: random.Random) -> Arch:
        """Changes one randomly chosen searched dimension to another value of the space."""
        dims = space.searched()
        if not dims:
            raise ValueError("space: no dimension has more than one value; nothing to mutate")
        dim = rng.choice(dims)
        return rng.choice(self.neighbours(space, dim))

    def neighbours(self, space: Space, dimension: str) -> list[Arch]:
        """The one-at-a-time variants along `dimension` (an ablation table's rows), self
        excluded."""
        values = space.values(dimension)
        return [self.replace(**{dimension: v}) for v in values if v != getattr(self, dimension)]
