"""Joint image + mask preprocessing ops for tf.data, named in configs.

An *example* is a dict of tensors: `image` uint8 `(H, W, 3)` (or a clip `(T, H, W, 3)`),
`mask` uint8 `(H, W)` (clip `(T, H, W)`, 255 = ignore) and any other keys (e.g. a clip's
`labelled` `(T,)` flag), which ops pass through. Every op maps an example to an example and
keeps `image` uint8 until the final normalisation op turns it into float32. A clip is
transformed as one unit: the same scale, crop, flip and colour change on every frame.

Randomness is stateless: an op is called with a `(2,)` seed and draws only from
`tf.random.stateless_*` / `tf.image.stateless_*`, so a pipeline is a pure function of
(example, seed). A chain gives op `i` the seed `stateless_fold_in(seed, i)`.

**Spec syntax.** A pipeline is named in configs as a list of op calls or one string joining
them with `|`, arguments as Python literals (positional or keyword); an op without arguments
may omit the parentheses:

    "random_scale(0.5, 2.0, 0.25) | random_crop(512, 512) | random_flip | photometric | normalize"

Ops (`OPS`, the one registry of the project): `resize`, `random_scale`, `random_crop`,
`center_crop`, `random_flip`, `photometric`, `random_temporal_crop`, `temporal_crop`,
`normalize` ([low, high], default [-1, 1] as in seed 001) and `standardize` (mean / std in
0..255 units). Exactly one normalisation op must end the chain.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from data.labels import IGNORE_INDEX

Example = dict[str, tf.Tensor]
HW = tuple[int, int] | None  # a static (height, width), or None when it varies per example


def _hw(ex: Example) -> tuple[tf.Tensor, tf.Tensor]:
    shape = tf.shape(ex["mask"])
    return shape[-2], shape[-1]


def _resize(ex: Example, size: tf.Tensor | tuple[int, int]) -> Example:
    """Image bilinear (rounded back to uint8), mask nearest (labels are never blended)."""
    image = tf.image.resize(ex["image"], size, method="bilinear")
    mask = tf.image.resize(ex["mask"][..., None], size, method="nearest")[..., 0]
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    return {**ex, "image": image, "mask": mask}


def _pad_to(ex: Example, height: int, width: int, fill: tuple[float, ...]) -> Example:
    """Pad bottom / right to at least (height, width): image with `fill`, mask with 255."""
    h, w = _hw(ex)
    ph, pw = tf.maximum(height - h, 0), tf.maximum(width - w, 0)
    lead = [[0, 0]] * (ex["mask"].shape.rank - 2)
    fill_t = tf.constant([round(v) for v in fill], tf.int32)
    image = tf.pad(tf.cast(ex["image"], tf.int32) - fill_t, lead + [[0, ph], [0, pw], [0, 0]])
    mask = tf.pad(ex["mask"], lead + [[0, ph], [0, pw]], constant_values=IGNORE_INDEX)
    return {**ex, "image": tf.cast(image + fill_t, tf.uint8), "mask": mask}


def _crop(ex: Example, top: tf.Tensor, left: tf.Tensor, height: int, width: int) -> Example:
    image = ex["image"][..., top : top + height, left : left + width, :]
    mask = ex["mask"][..., top : top + height, left : left + width]
    return {
        **ex,
        "image": tf.ensure_shape(image, image.shape[:-3] + (height, width, 3)),
        "mask": tf.ensure_shape(mask, mask.shape[:-2] + (height, width)),
    }


def _fill3(fill: float | Sequence[float], field: str) -> tuple[float, float, float]:
    values = (fill,) * 3 if isinstance(fill, (int, float)) else tuple(fill)
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise ValueError(f"{field}: got {fill!r}; allowed: a number or 3 numbers in 0..255")
    return values  # type: ignore[return-value]


def _positive(op: str, **values: float) -> None:
    for field, v in values.items():
        if not isinstance(v, (int, float)) or not v > 0:
            raise ValueError(f"{op} {field}: got {v!r}; allowed: > 0")


def _count(op: str, **values: int) -> None:
    """Sizes and frame counts: positive integers."""
    for field, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{op} {field}: got {v!r}; allowed: an integer >= 1")


@dataclasses.dataclass(frozen=True)
class Resize:
    """Resize to (height, width)."""

    height: int
    width: int

    def __post_init__(self) -> None:
        _count("resize", height=self.height, width=self.width)

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Resize `ex` to (height, width); `seed` is unused."""
        return _resize(ex, (self.height, self.width))

    def output_hw(self, hw: HW) -> HW:
        """Always (height, width), whatever the input size."""
        return (self.height, self.width)


@dataclasses.dataclass(frozen=True)
class RandomScale:
    """Resize by a factor drawn uniformly from {min, min + step, ..., max} (step 0: continuous)."""

    min_scale: float = 0.5
    max_scale: float = 2.0
    step: float = 0.25

    def __post_init__(self) -> None:
        _positive("random_scale", min_scale=self.min_scale)
        if self.max_scale < self.min_scale or self.step < 0:
            raise ValueError(
                f"random_scale: got ({self.min_scale}, {self.max_scale}, "
                f"{self.step}); allowed: 0 < min_scale <= max_scale, step >= 0"
            )

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Rescale `ex` by one factor drawn from `seed` (image bilinear, mask nearest)."""
        if self.step > 0:
            n = int(round((self.max_scale - self.min_scale) / self.step)) + 1
            k = tf.random.stateless_uniform([], seed, 0, n, dtype=tf.int32)
            scale = self.min_scale + self.step * tf.cast(k, tf.float32)
        else:
            scale = tf.random.stateless_uniform([], seed, self.min_scale, self.max_scale)
        h, w = _hw(ex)
        size = tf.cast(tf.round(tf.cast(tf.stack([h, w]), tf.float32) * scale), tf.int32)
        return _resize(ex, tf.maximum(size, 1))

    def output_hw(self, hw: HW) -> HW:
        """`hw` if the scale is fixed at 1, else None (the output size varies)."""
        return hw if self.min_scale == self.max_scale == 1 else None


@dataclasses.dataclass(frozen=True)
class RandomCrop:
    """Crop (height, width) at a random place; smaller inputs are padded first (mask: 255)."""

    height: int
    width: int
    image_fill: float | tuple[float, float, float] = 0

    def __post_init__(self) -> None:
        _count("random_crop", height=self.height, width=self.width)
        _fill3(self.image_fill, "random_crop image_fill")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Pad to at least (height, width), then crop at an offset drawn from `seed`."""
        ex = _pad_to(ex, self.height, self.width, _fill3(self.image_fill, "image_fill"))
        h, w = _hw(ex)
        top = tf.random.stateless_uniform([], seed, 0, h - self.height + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform(
            [],
            tf.random.experimental.stateless_fold_in(seed, 1),
            0,
            w - self.width + 1,
            dtype=tf.int32,
        )
        return _crop(ex, top, left, self.height, self.width)

    def output_hw(self, hw: HW) -> HW:
        """Always (height, width), whatever the input size."""
        return (self.height, self.width)


@dataclasses.dataclass(frozen=True)
class CenterCrop:
    """Crop (height, width) from the centre; smaller inputs are padded first (mask: 255)."""

    height: int
    width: int
    image_fill: float | tuple[float, float, float] = 0

    def __post_init__(self) -> None:
        _count("center_crop", height=self.height, width=self.width)
        _fill3(self.image_fill, "center_crop image_fill")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Pad to at least (height, width), then crop the centre; `seed` is unused."""
        ex = _pad_to(ex, self.height, self.width, _fill3(self.image_fill, "image_fill"))
        h, w = _hw(ex)
        return _crop(ex, (h - self.height) // 2, (w - self.width) // 2, self.height, self.width)

    def output_hw(self, hw: HW) -> HW:
        """Always (height, width), whatever the input size."""
        return (self.height, self.width)


@dataclasses.dataclass(frozen=True)
class RandomFlip:
    """Mirror left-right with `probability`."""

    probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"random_flip probability: got {self.probability!r}; allowed: 0..1")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Mirror image and mask left-right together with `probability` (drawn from `seed`)."""
        flip = tf.random.stateless_uniform([], seed) < self.probability
        image = tf.cond(flip, lambda: tf.reverse(ex["image"], [-2]), lambda: ex["image"])
        mask = tf.cond(flip, lambda: tf.reverse(ex["mask"], [-1]), lambda: ex["mask"])
        return {**ex, "image": image, "mask": mask}

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: flipping keeps the size."""
        return hw


@dataclasses.dataclass(frozen=True)
class Photometric:
    """Random brightness (+-brightness in 0..255 units), contrast and saturation factors in
    [1 - x, 1 + x], hue shift (+-hue, fraction of the colour wheel); applied in that order."""

    brightness: float = 32.0
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.05

    def __post_init__(self) -> None:
        for field, hi in (
            ("brightness", 255.0),
            ("contrast", 0.99),
            ("saturation", 0.99),
            ("hue", 0.5),
        ):
            if not 0 <= getattr(self, field) <= hi:
                raise ValueError(
                    f"photometric {field}: got {getattr(self, field)!r}; allowed: 0..{hi}"
                )

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Jitter the image's colours (uint8 in and out, mask untouched), seeded by `seed`."""

        def s(i: int) -> tf.Tensor:
            return tf.random.experimental.stateless_fold_in(seed, i)

        x = tf.cast(ex["image"], tf.float32) / 255.0
        if self.brightness:
            x = tf.image.stateless_random_brightness(x, self.brightness / 255.0, s(0))
        if self.contrast:
            x = tf.image.stateless_random_contrast(x, 1 - self.contrast, 1 + self.contrast, s(1))
        if self.saturation:
            x = tf.image.stateless_random_saturation(
                x, 1 - self.saturation, 1 + self.saturation, s(2)
            )
        if self.hue:
            x = tf.image.stateless_random_hue(x, self.hue, s(3))
        image = tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0), tf.uint8)
        return {**ex, "image": image}

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: colour jitter keeps the size."""
        return hw


def _check_clip(ex: Example, op: str) -> None:
    if ex["mask"].shape.rank != 3:
        raise ValueError(
            f"{op}: needs a clip (mask (T, H, W)); got mask of rank {ex['mask'].shape.rank}"
        )


def _slice_time(ex: Example, start: tf.Tensor, n: int) -> Example:
    """Frames start..start+n of every per-frame key (image, mask, labelled, ...)."""
    t = ex["mask"].shape[0]
    out = {}
    for k, v in ex.items():
        per_frame = v.shape.rank >= 1 and v.shape[0] == t
        out[k] = (
            tf.ensure_shape(v[start : start + n], (n,) + tuple(v.shape[1:])) if per_frame else v
        )
    return out


@dataclasses.dataclass(frozen=True)
class RandomTemporalCrop:
    """A random window of `num_frames` consecutive frames of a clip."""

    num_frames: int

    def __post_init__(self) -> None:
        _count("random_temporal_crop", num_frames=self.num_frames)

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Keep `num_frames` consecutive frames from a start drawn from `seed`."""
        _check_clip(ex, "random_temporal_crop")
        t = tf.shape(ex["mask"])[0]
        tf.debugging.assert_greater_equal(
            t, self.num_frames, "random_temporal_crop: clip shorter than num_frames"
        )
        start = tf.random.stateless_uniform([], seed, 0, t - self.num_frames + 1, tf.int32)
        return _slice_time(ex, start, self.num_frames)

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: only the time axis is cropped."""
        return hw


@dataclasses.dataclass(frozen=True)
class TemporalCrop:
    """Frames `start`..`start + num_frames` of a clip (deterministic, for evaluation)."""

    num_frames: int
    start: int = 0

    def __post_init__(self) -> None:
        _count("temporal_crop", num_frames=self.num_frames)
        if self.start < 0:
            raise ValueError(f"temporal_crop start: got {self.start!r}; allowed: >= 0")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Keep frames start..start + num_frames of the clip; `seed` is unused."""
        _check_clip(ex, "temporal_crop")
        tf.debugging.assert_greater_equal(
            tf.shape(ex["mask"])[0],
            self.start + self.num_frames,
            "temporal_crop: clip shorter than start + num_frames",
        )
        return _slice_time(ex, tf.constant(self.start), self.num_frames)

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: only the time axis is cropped."""
        return hw


@dataclasses.dataclass(frozen=True)
class Normalize:
    """uint8 0..255 -> float32 low..high (seed 001: [-1, 1])."""

    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"normalize: got ({self.low}, {self.high}); allowed: low < high")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """The image as float32 mapped linearly from 0..255 to low..high; mask untouched."""
        x = tf.cast(ex["image"], tf.float32) * ((self.high - self.low) / 255.0) + self.low
        return {**ex, "image": x}

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: normalisation keeps the size."""
        return hw


@dataclasses.dataclass(frozen=True)
class Standardize:
    """uint8 -> float32 (x - mean) / std per channel, mean / std in 0..255 units (ImageNet's
    by default)."""

    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def __post_init__(self) -> None:
        _fill3(self.mean, "standardize mean")
        if len(tuple(self.std)) != 3 or not all(s > 0 for s in self.std):
            raise ValueError(f"standardize std: got {self.std!r}; allowed: 3 numbers > 0")

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """The image as float32 (x - mean) / std per channel; mask untouched."""
        x = tf.cast(ex["image"], tf.float32) - tf.constant(self.mean, tf.float32)
        return {**ex, "image": x / tf.constant(self.std, tf.float32)}

    def output_hw(self, hw: HW) -> HW:
        """`hw` unchanged: standardisation keeps the size."""
        return hw


# The registry: op name in configs -> op class (its constructor is the op's signature).
OPS: dict[str, type] = {
    "resize": Resize,
    "random_scale": RandomScale,
    "random_crop": RandomCrop,
    "center_crop": CenterCrop,
    "random_flip": RandomFlip,
    "photometric": Photometric,
    "random_temporal_crop": RandomTemporalCrop,
    "temporal_crop": TemporalCrop,
    "normalize": Normalize,
    "standardize": Standardize,
}
NORMALIZERS = (Normalize, Standardize)


def _signature(name: str, cls: type) -> str:
    """e.g. `random_crop(height, width, image_fill=0)`."""
    params = inspect.signature(cls).parameters.values()
    return (
        name
        + "("
        + ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in params)
        + ")"
    )


def _parse_one(item: str) -> Any:
    try:
        node = ast.parse(item.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(
            f"preprocess op: got {item!r}; allowed: name or name(args), e.g. random_crop(64, 64)"
        ) from None
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call else node
    if not isinstance(func, ast.Name):
        raise ValueError(f"preprocess op: got {item!r}; allowed: name or name(args)")
    if func.id not in OPS:
        raise ValueError(f"preprocess op: got {func.id!r}; allowed: {', '.join(OPS)}")
    cls = OPS[func.id]
    try:
        args = [ast.literal_eval(a) for a in call.args] if call else []
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords} if call else {}
        inspect.signature(cls).bind(*args, **kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"preprocess op {item.strip()!r}: {e}; signature: {_signature(func.id, cls)}"
        ) from None
    return cls(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class Chain:
    """A parsed pipeline: `chain(example, seed)` applies every op, op i seeded by fold_in(i)."""

    ops: tuple[Any, ...]
    spec: str

    def __call__(self, ex: Example, seed: tf.Tensor) -> Example:
        """Apply every op in order, op i seeded with stateless_fold_in(seed, i)."""
        for i, op in enumerate(self.ops):
            ex = op(ex, tf.random.experimental.stateless_fold_in(seed, i))
        return ex

    def output_hw(self, hw: HW) -> HW:
        """The static (height, width) of the output for inputs of `hw`, or None if it varies."""
        for op in self.ops:
            hw = op.output_hw(hw)
        return hw


def parse(spec: str | Sequence[str], field: str = "preprocess") -> Chain:
    """Parse a spec (a `|`-joined string or a list of op calls) into a `Chain`.

    ValueError (prefixed with `field`) for unknown ops, bad arguments, or a chain that does
    not end in exactly one normalisation op.
    """
    items = spec.split("|") if isinstance(spec, str) else list(spec)
    items = [s for s in (i.strip() for i in items) if s]
    try:
        ops = tuple(_parse_one(i) for i in items)
    except ValueError as e:
        raise ValueError(f"{field}: {e}") from None
    norms = [i for i, op in enumerate(ops) if isinstance(op, NORMALIZERS)]
    if norms != [len(ops) - 1]:
        raise ValueError(
            f"{field}: got {' | '.join(items)!r}; allowed: a chain ending in "
            "exactly one normalisation op (normalize or standardize)"
        )
    return Chain(ops, " | ".join(items))
