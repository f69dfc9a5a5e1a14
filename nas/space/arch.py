"""`Arch`: one point of the joint search space, a frozen value that validates itself.

An arch holds every family to come: the encoder (a name of `models.encoders.ENCODERS` and that
family's own knob config), the decoder (likewise, `models.decoders.DECODERS`), the conv spec,
the input resolution, the output stride, the classes, and an optional video section (none
yet). Its JSON (schema 2) nests them:

    {"schema": 2, "encoder": {"name": "efficientnet_lite0", "width": 1.0, "depth": 1.0},
     "decoder": {"name": "unet", "kind": "mlp"}, "conv": {"type": "group", "group_size": 8},
     "resolution": [512, 512], "output_stride": 32, "num_classes": 2}

**Paths.** Every knob has a path (`encoder.width`, `decoder.kind`, `conv.group_size`,
`resolution`, later `video.keyframe_interval`); `flatten()` gives `{path: value}` and feeds
Optuna parameters, W&B config keys, result tables and the CLI printout; `with_values({path:
value})` is the one way to change an arch.

**One conv spec, shared.** The encoder's blocks and the decoder's stages use one `conv`
(seed 000 searched it jointly; the heads whose convs are 1x1 ignore it). A family that needs its
own later gets a knob in its config.

**Knobs that do not apply.** `conv.group_size` applies to `conv.type == "group"` only: under any
other type it is reset to its default, so it is left out of the arch's identity (two depthwise
archs that differ only in group size are one arch with one id) and out of `flatten()`. A
family's knobs exist only for that family: an arch JSON that gives `kind` to `lraspp`, or a
non-default `group_size` with `depthwise`, is an error naming it. `with_values` (what a search
uses, with every dimension always present) skips knobs the chosen family lacks instead.

**Output stride and resolution.** `output_stride` is 8, 16 or 32 for every encoder family
(the stages beyond it run at stride 1, dilated: `models/encoders/common.py`). A decoder that
works at one stride only (`aam`, which fuses 1/8, 1/16 and 1/32, needs 32) fixes it: an arch
JSON that gives another is an error, a search move resets it, as `group_size` above. A segmenting
arch takes any height and width from the output stride up, divisible or not: convs pad like
TF "SAME", so the feature at stride s is ceil(H / s) x ceil(W / s) and the decoders upsample
to the sizes that exist.

**Old files.** Schema 1 (today's flat arch files: `encoder`, `decoder`, `conv_type`,
`group_size`, `width`, `depth`, ...) still load and become the same network: a U-Net decoder
kind (`bilinear`, `channel_attention`, `mlp`) becomes `{"name": "unet", "kind": ...}`. Their ids
change (the id hashes the schema-2 JSON).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from typing import TYPE_CHECKING, Any

from models.decoders import DECODERS, SEGMENTATION
from models.decoders.unet import KINDS as UNET_KINDS
from models.encoders import ENCODERS
from models.layers import CONV_TYPES, ConvSpec

if TYPE_CHECKING:
    from nas.space.space import Space

SCHEMA = 2
OUTPUT_STRIDES: tuple[int, ...] = (8, 16, 32)
TOP_FIELDS = ("encoder", "decoder", "conv", "resolution", "output_stride", "num_classes")
V1_FIELDS = (
    "encoder",
    "decoder",
    "conv_type",
    "group_size",
    "width",
    "depth",
    "resolution",
    "output_stride",
    "num_classes",
)


def allowed(field: str, value: Any, what: str) -> ValueError:
    """The one error shape: `field: got value; allowed: what`."""
    return ValueError(f"{field}: got {value!r}; allowed: {what}")


def _tables(part: str) -> dict[str, Any]:
    return ENCODERS if part == "encoder" else DECODERS


def knob_names(part: str, name: str) -> tuple[str, ...]:
    """The knobs of family `name` of `part` ("encoder" or "decoder"), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(_tables(part)[name].config))


@dataclasses.dataclass(frozen=True)
class Part:
    """A chosen family (`name`) of an encoder or decoder and its knob config (`config`)."""

    name: str
    config: Any

    def knobs(self) -> dict[str, Any]:
        """The config's knobs as plain JSON values (a float knob given as 1 is 1.0, so the
        canonical JSON, and the id, do not depend on how a number was typed)."""
        out = {}
        for f in dataclasses.fields(self.config):
            v = getattr(self.config, f.name)
            floaty = f.type in (float, "float") and isinstance(v, int) and not isinstance(v, bool)
            out[f.name] = float(v) if floaty else v
        return out


def _part(part: str, d: Any, strict: bool) -> Part:
    """A Part from `{"name": ..., knob: value, ...}`; unknown knobs are errors if `strict`."""
    table = _tables(part)
    if isinstance(d, str):
        d = {"name": d}
    if not isinstance(d, dict):
        raise allowed(part, d, 'an object {"name": ..., knob: value, ...}')
    name = d.get("name")
    if name not in table:
        raise allowed(f"{part}.name", name, ", ".join(table))
    knobs = {k: v for k, v in d.items() if k != "name"}
    own = knob_names(part, name)
    extra = sorted(set(knobs) - set(own))
    if extra and strict:
        raise allowed(
            f"{part}.{extra[0]}",
            knobs[extra[0]],
            f"no such knob for {part} {name!r} (its knobs: {', '.join(own) or 'none'})",
        )
    config = table[name].config(**{k: v for k, v in knobs.items() if k in own})
    try:
        config.validate()
    except ValueError as e:
        raise ValueError(f"{part}.{e}") from None
    return Part(name, config)


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture (module docstring). Build one with `Arch.from_dict`, change it with
    `with_values`; `validate()` checks the fields that do not depend on a family."""

    encoder: Part
    decoder: Part
    conv: ConvSpec = ConvSpec()
    resolution: tuple[int, int] = (256, 256)
    output_stride: int = 32
    num_classes: int = 2
    video: None = None

    def __post_init__(self) -> None:
        # JSON gives lists; keep the value hashable and canonical. A group size that does not
        # apply is reset, so it never tells two equal networks apart.
        if isinstance(self.resolution, list):
            object.__setattr__(self, "resolution", tuple(self.resolution))
        if self.conv.type != "group" and self.conv.group_size != ConvSpec().group_size:
            object.__setattr__(self, "conv", ConvSpec(self.conv.type))
        # Likewise the output stride of a decoder that works at one only (AAM: 32).
        fixed = _fixed_stride(self.decoder)
        if fixed is not None and self.output_stride != fixed:
            object.__setattr__(self, "output_stride", fixed)

    def validate(self) -> Arch:
        """Raises ValueError naming the field, the value and what is allowed; returns self."""
        for part in ("encoder", "decoder"):
            p = getattr(self, part)
            if not isinstance(p, Part) or p.name not in _tables(part):
                raise allowed(f"{part}.name", getattr(p, "name", p), ", ".join(_tables(part)))
            try:
                p.config.validate()
            except ValueError as e:
                raise ValueError(f"{part}.{e}") from None
        try:
            self.conv.validate()
        except ValueError as e:
            raise ValueError(f"conv.{e}") from None
        if type(self.output_stride) is not int or self.output_stride not in OUTPUT_STRIDES:
            raise allowed("output_stride", self.output_stride, ", ".join(map(str, OUTPUT_STRIDES)))
        res = self.resolution
        if (
            not isinstance(res, tuple)
            or len(res) != 2
            or any(type(r) is not int or r <= 0 for r in res)
        ):
            raise allowed("resolution", res, "[height, width], two positive integers")
        # Strided convs pad like TF "SAME" (feature maps ceil(H / s)), so any size builds, as
        # in the reference code (seed 001's 360 x 640 gives 23 x 40 at 1/16). A side shorter
        # than the output stride would leave the deepest features one pixel computed mostly
        # from padding (and, below half of it, stride-2 convs mapping 1 x 1 to 1 x 1), so the
        # output stride would be nominal only. The classifier ends in global pooling and takes
        # any size (EfficientNet-Lite2 is 260²).
        if self.decoder.name in SEGMENTATION and min(res) < self.output_stride:
            raise allowed(
                "resolution",
                list(res),
                f"height and width >= the output stride {self.output_stride}",
            )
        if self.decoder.name == "classifier" and ENCODERS[self.encoder.name].classifier is None:
            raise allowed(
                "decoder.name",
                "classifier",
                f"a segmenting decoder for encoder {self.encoder.name!r} "
                f"({', '.join(SEGMENTATION)}): it has no ImageNet classifier",
            )
        if type(self.num_classes) is not int or self.num_classes < 1:
            raise allowed("num_classes", self.num_classes, "an integer >= 1")
        if self.video is not None:
            raise allowed("video", self.video, "none yet (video families come later)")
        return self

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The schema-2 JSON object (module docstring); knobs that do not apply left out."""
        conv: dict[str, Any] = {"type": self.conv.type}
        if self.conv.type == "group":
            conv["group_size"] = self.conv.group_size
        return {
            "schema": SCHEMA,
            "encoder": {"name": self.encoder.name, **self.encoder.knobs()},
            "decoder": {"name": self.decoder.name, **self.decoder.knobs()},
            "conv": conv,
            "resolution": list(self.resolution),
            "output_stride": self.output_stride,
            "num_classes": self.num_classes,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces; equal archs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Arch:
        """A validated Arch from its JSON object (schema 2, or a schema-1 flat one); a
        ValueError names the first unknown, missing or illegal field."""
        if not isinstance(d, dict):
            raise ValueError(f"arch: got {type(d).__name__}; allowed: a JSON object")
        schema = d.get("schema", 2 if isinstance(d.get("encoder"), dict) else 1)
        if schema == 1:
            return _from_v1(d)
        if schema != SCHEMA:
            raise allowed("schema", schema, f"1 or {SCHEMA}")
        unknown = sorted(set(d) - set(TOP_FIELDS) - {"schema", "video"})
        if unknown:
            raise allowed("arch", unknown[0], "fields " + ", ".join(TOP_FIELDS))
        for name in ("encoder", "decoder"):
            if name not in d:
                raise allowed(name, None, ", ".join(_tables(name)))
        conv = d.get("conv", {})
        if not isinstance(conv, dict) or set(conv) - {"type", "group_size"}:
            raise allowed("conv", conv, '{"type": ..., "group_size": ...}')
        spec = ConvSpec(**conv)
        if spec.type != "group" and spec.group_size != ConvSpec().group_size:
            raise allowed(
                "conv.group_size",
                spec.group_size,
                f"only with conv.type 'group' (got {spec.type!r})",
            )
        if spec.type not in CONV_TYPES:
            raise allowed("conv.type", spec.type, ", ".join(CONV_TYPES))
        decoder = _part("decoder", d["decoder"], strict=True)
        fixed = _fixed_stride(decoder)
        if fixed is not None and d.get("output_stride", fixed) != fixed:
            raise allowed(
                "output_stride",
                d["output_stride"],
                f"{fixed} for decoder {decoder.name!r} (the only stride it works at)",
            )
        arch = cls(
            encoder=_part("encoder", d["encoder"], strict=True),
            decoder=decoder,
            conv=spec,
            resolution=d.get("resolution", (256, 256)),
            output_stride=d.get("output_stride", 32),
            num_classes=d.get("num_classes", 2),
            video=d.get("video"),
        )
        return arch.validate()

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

    def label(self) -> str:
        """A short label, e.g. `efficientnet_lite0+mlp g8 w1 512x512` (a U-Net shows its kind)."""
        conv = {"depthwise": "dw", "regular": "reg"}.get(self.conv.type, f"g{self.conv.group_size}")
        knobs = self.encoder.knobs()
        width = f" w{knobs['width']:g}" if "width" in knobs else ""
        dec = self.decoder.knobs().get("kind", self.decoder.name)
        res = "x".join(map(str, self.resolution))
        return f"{self.encoder.name}+{dec} {conv}{width} {res}"

    # -- paths ----------------------------------------------------------------------------
    def flatten(self) -> dict[str, Any]:
        """{path: value} of every knob that applies, in a fixed order (module docstring)."""
        d = self.to_dict()
        out: dict[str, Any] = {}
        for top in TOP_FIELDS:
            v = d[top]
            if isinstance(v, dict):
                out.update({f"{top}.{k}": x for k, x in v.items()})
            else:
                out[top] = tuple(v) if top == "resolution" else v
        return out

    def get(self, path: str) -> Any:
        """The value at `path`, also for a knob that does not apply (its current value)."""
        top, _, knob = path.partition(".")
        if top in ("encoder", "decoder"):
            p = getattr(self, top)
            return p.name if knob == "name" else getattr(p.config, knob, None)
        if top == "conv":
            return getattr(self.conv, knob)
        return getattr(self, top)

    def with_values(self, changes: dict[str, Any]) -> Arch:
        """A validated copy with `changes` ({path: value}) applied. A new family name comes
        first and keeps the knobs its config shares with the old one; knobs the (new) family
        lacks are skipped, so every search dimension can always be given."""
        parts = {"encoder": self.encoder, "decoder": self.decoder}
        top: dict[str, Any] = {}
        conv = dataclasses.asdict(self.conv)
        for part in parts:
            name = changes.get(f"{part}.name", parts[part].name)
            knobs = parts[part].knobs()
            knobs.update(
                {
                    p.split(".", 1)[1]: v
                    for p, v in changes.items()
                    if p.startswith(part + ".") and p != f"{part}.name"
                }
            )
            own = knob_names(part, name) if name in _tables(part) else ()
            parts[part] = _part(
                part, {"name": name, **{k: v for k, v in knobs.items() if k in own}}, strict=True
            )
        for path, value in changes.items():
            head, _, knob = path.partition(".")
            if head == "conv":
                if knob not in conv:
                    raise allowed(path, value, "conv.type, conv.group_size")
                conv[knob] = value
            elif head not in ("encoder", "decoder"):
                if head not in ("resolution", "output_stride", "num_classes") or knob:
                    raise allowed(
                        "path",
                        path,
                        "encoder.*, decoder.*, conv.*, resolution, output_stride, num_classes",
                    )
                top[head] = tuple(value) if head == "resolution" else value
        return dataclasses.replace(self, **parts, conv=ConvSpec(**conv), **top).validate()

    def replace(self, **changes: Any) -> Arch:
        """A validated copy with top-level fields (`resolution`, `num_classes`, ...) replaced."""
        return dataclasses.replace(self, **changes).validate()

    # -- search moves (the space says which values exist) -------------------------------
    @classmethod
    def sample(cls, space: Space, rng: random.Random) -> Arch:
        """A uniformly random point of `space`."""
        return space.arch({d: rng.choice(space.values(d)) for d in space.searched()})

    def mutate(self, space: Space, rng: random.Random) -> Arch:
        """Changes one randomly chosen searched dimension to another value of the space."""
        dims = space.searched()
        if not dims:
            raise ValueError("space: no dimension has more than one value; nothing to mutate")
        options = [a for d in dims for a in self.neighbours(space, d)]
        if not options:
            raise ValueError("space: no searched dimension applies to this arch; nothing to mutate")
        return rng.choice(options)

    def neighbours(self, space: Space, dimension: str) -> list[Arch]:
        """The one-at-a-time variants along `dimension` (an ablation table's rows), self and
        duplicates excluded (a value the arch's family ignores gives the arch itself)."""
        seen, out = {self.id}, []
        for v in space.values(dimension):
            a = self.with_values({dimension: v})
            if a.id not in seen:
                seen.add(a.id)
                out.append(a)
        return out


def _fixed_stride(decoder: Any) -> int | None:
    """The one output stride `decoder` (a Part) works at, None if any (or not a decoder)."""
    head = DECODERS.get(getattr(decoder, "name", None))
    return head.output_stride if head is not None else None


def _from_v1(d: dict[str, Any]) -> Arch:
    """A schema-1 flat arch (before family configs) as the same network in schema 2."""
    unknown = sorted(set(d) - set(V1_FIELDS) - {"schema"})
    if unknown:
        raise allowed("arch", unknown[0], "fields " + ", ".join(V1_FIELDS))
    for name in ("encoder", "decoder"):
        if name not in d:
            legal = ENCODERS if name == "encoder" else (*UNET_KINDS, "lraspp", "classifier")
            raise ValueError(f"{name}: missing; allowed: " + ", ".join(legal))
    decoder = d["decoder"]
    if decoder in UNET_KINDS:
        dec: dict[str, Any] = {"name": "unet", "kind": decoder}
    elif decoder in DECODERS and decoder != "unet":
        dec = {"name": decoder}
    else:
        raise allowed("decoder", decoder, ", ".join((*UNET_KINDS, "lraspp", "classifier")))
    enc = {"name": d["encoder"], "width": d.get("width", 1.0), "depth": d.get("depth", 1.0)}
    conv = ConvSpec(d.get("conv_type", "depthwise"), d.get("group_size", 8))
    if conv.type not in ("depthwise", "group"):
        raise allowed("conv_type", conv.type, "depthwise, group")
    return Arch(
        encoder=_part("encoder", enc, strict=False),
        decoder=_part("decoder", dec, strict=False),
        conv=conv,
        resolution=d.get("resolution", (256, 256)),
        output_stride=d.get("output_stride", 32),
        num_classes=d.get("num_classes", 2),
    ).validate()
