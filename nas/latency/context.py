"""Timing one model the way tables time whole models: among other whole models.

Calibration and validation time whole models in interleaved chunks of 8 (`build.measure_models`),
so each call finds the machine as seven other models left it. A model timed alone, call after
call, runs faster, and not only through the data caches: on the development VM a
1.2 ms model measured 0.63 ms alone and 1.07-1.18 ms in chunks, and neither flushing the
L2-sized caches nor running a small model between calls closed that gap (0.64 ms); seven
copies of the same model closed most of it (0.95-1.01 ms). Larger models differed less
(0-10 %), but the table's fit is made on chunks, so a lone model (an export's report, a
search's winner) is timed in a chunk too, with `COMPANIONS` other whole models:
a seeded sample of the sweep's space, or of seed 000's space at the model's resolution and
class count. Its figure is then on the same protocol as the table's calibration points and its
prediction, and can be compared with them.

Anchors. A model checked against a table (a search's winner) is timed among the table's own
calibration models of about its latency (`anchor_sets`), and each chunk's samples are put on
the table's scale by those models: x (their table figure / their figure in this chunk), the
median over the chunk's anchors, rather than by the reference program alone. A 3 ms reference
tracks small models badly: in one search process the reference read 6 % slower at the end
than during calibration while two 0.4-1 ms whole models read 15 % slower, so the reference
scale left them 7-11 % above their calibration points; the anchors, small whole models too,
move with them. In the next quickstart run, the two winners' anchored figures were 1.3 % and
2.6 % from their own calibration points (the reference's scale: 3.4 % and 10.0 %), and 5.5 %
and 1.2 % from their predictions (results/quickstart.json). The reference program is still
timed in every chunk, and its figure reported (`reference_ms`), so both scales can be compared.
"""

from __future__ import annotations

import functools
import math
import random
import statistics
from collections.abc import Sequence
from typing import Any

from nas.latency import measure
from nas.latency.blocks import whole_model
from nas.space.arch import Arch
from nas.space.space import Space

COMPANIONS = 7  # a chunk of build.measure_models holds 8 whole models
# A small model's figure moves with the models around it and with what the machine does
# during its chunk: a 0.74 ms quickstart winner, timed in 3 chunks on a quiet machine, read
# 0.70 and 0.73 ms (its exported file) and 0.76 and 0.77 ms (its random-weight model), and
# 0.83 ms once at the end of a search. A lone
# model is therefore timed in several chunks, each with another draw of companions (and each
# filling measure.WINDOW_S), its rounds split among them.
COMPANION_SETS = 5
# The reference program timed in every chunk (measure.py, "Drift"): a mid-sized model of the
# kinds tables hold (~3 ms at 1 thread on the development VM).
REFERENCE = Arch.from_dict(
    dict(
        encoder=dict(name="mobilenet_v3_large", width=1.0),
        decoder=dict(name="unet", kind="bilinear"),
        resolution=(128, 128),
        num_classes=2,
    )
)
_SELF = "\0model"  # the timed model's key among its companions (no arch id looks like it)


def companions_for(
    arch: Arch, space: Space | None = None, k: int = COMPANIONS, seed: int = 0
) -> tuple[Arch, ...]:
    """`k` archs other than `arch`, a sample (seeded by `seed`) of `space` (by default seed
    000's space at `arch`'s resolution and class count; fewer when the space is smaller). The
    seed is fixed, so models of one space share companions (and their conversions, cached)."""
    if space is None:
        from nas.space.presets import SPACES

        base = SPACES["seed000"]
        space = Space(base.replace(resolution=(arch.resolution,)).dims, arch.num_classes)
    pool = list(space.grid())
    picked = random.Random(seed).sample(pool, min(k + 1, len(pool)))
    return tuple([a for a in picked if a.id != arch.id][:k])


def companion_sets(
    arch: Arch, space: Space | None = None, sets: int = COMPANION_SETS
) -> tuple[tuple[Arch, ...], ...]:
    """`sets` companion sets (`companions_for` with seeds 0, 1, ...): a lone model is timed in
    one chunk per set, so no single draw of neighbours decides its figure."""
    return tuple(companions_for(arch, space, seed=i) for i in range(sets))


def anchor_sets(
    arch: Arch,
    points: Sequence[dict[str, Any]],
    near_ms: float,
    sets: int = COMPANION_SETS,
    k: int = COMPANIONS,
) -> tuple[tuple[tuple[Arch, ...], ...], dict[str, float]]:
    """Companion sets drawn from a table's calibration `points` (`{id, arch, measured}`, the
    model itself left out): the `2 k` points nearest to `near_ms` in log latency, `sets` seeded
    draws of `k` of them; and each point's table figure (ms) by arch id, the anchors."""
    others = [p for p in points if p["id"] != arch.id]
    others.sort(key=lambda p: abs(math.log(p["measured"]["median_ms"] / near_ms)))
    pool = others[: 2 * k]
    picked = [random.Random(i).sample(pool, min(k, len(pool))) for i in range(sets)]
    anchors = {p["id"]: p["measured"]["median_ms"] for p in pool}
    return tuple(tuple(Arch.from_dict(p["arch"]) for p in s) for s in picked), anchors


@functools.lru_cache(maxsize=32)
def _timer(arch: Arch, target: str, threads: int, output: str = "logits") -> measure.Timer:
    # Converting a model takes a second or two: kept for the next chunk and the next export
    # in this process (companion sets of one space share most of their models). Table builds
    # and validation convert their models afresh and let them go. Keeping the calibration
    # models' timers alive for a search's winners (42 of the quickstart's 75 s of winners)
    # was tried: the one validation run with it read its second pass 6.5 % faster than its
    # first (median over 25 models, all but 3 faster), where runs with fresh timers had
    # repeated within 1.2 %; not kept until that is understood.
    return measure.make_timer(target, *whole_model(arch, output), threads=threads)


def _timers(
    companions: tuple[Arch, ...], target: str, threads: int, output: str = "logits"
) -> dict[str, Any]:
    return {a.id: _timer(a, target, threads, output) for a in companions}


def anchor_scale(samples: dict[str, list[float]], anchors: dict[str, float]) -> float | None:
    """The median over a chunk's anchors of (table figure / median in this chunk); None when
    the chunk has no anchor."""
    ratios = [anchors[k] / statistics.median(v) for k, v in samples.items() if k in anchors and v]
    return statistics.median(ratios) if ratios else None


@functools.lru_cache(maxsize=4)
def reference_timer(target: str, threads: int) -> measure.Timer:
    """The `Timer` of the reference program on `target` (converted once per process)."""
    return measure.make_timer(target, *whole_model(REFERENCE), threads=threads)


def rescale(samples: Sequence[float], reference_ms: float | None, now_ms: float | None) -> list:
    """Samples put on the scale where the reference took `reference_ms` (it took `now_ms`
    in their chunk); unchanged when either is missing."""
    if not reference_ms or not now_ms:
        return list(samples)
    return [x * reference_ms / now_ms for x in samples]


def time_among(
    timer: measure.Timer,
    sets: Sequence[Sequence[Arch]],
    target: str = "litert-cpu",
    threads: int = 1,
    rounds: int = measure.ROUNDS,
    warmup: int = measure.WARMUP,
    seed: int = 0,
    reference_ms: float | None = None,
    window_s: float = measure.WINDOW_S,
    anchors: dict[str, float] | None = None,
    output: str = "logits",
) -> tuple[list[float], list[float] | None, float | None]:
    """Samples (ms) of `timer`, its `rounds` split over one chunk per companion set of `sets`,
    each chunk timed for at least `window_s` (`measure.WINDOW_S`: no chunk is cut short)
    (`measure.measure`'s protocol; no set: the timer alone): the raw samples, and with a
    table's `reference_ms`, the samples on the table's scale (each chunk times the reference
    program) and the reference's median over the chunks; else None, None. With `anchors`
    (`anchor_sets`: companions' table figures, companions timed with `output`), a chunk's
    scale comes from its anchors (see "Anchors"), the reference's where it has none."""
    chunks = [tuple(c) for c in sets] or [()]
    reference = reference_timer(target, threads) if reference_ms else None
    raw: list[float] = []
    scaled: list[float] = []
    refs: list[float] = []
    for i, companions in enumerate(chunks):
        n = rounds // len(chunks) + (1 if i < rounds % len(chunks) else 0)
        if n == 0:
            continue
        timers = dict(_timers(companions, target, threads, output)) if companions else {}
        timers[_SELF] = timer
        samples, ref = measure.measure_chunk(timers, n, warmup, seed + i, reference, window_s)
        mine = samples.pop(_SELF)
        raw += mine
        if ref is not None:
            by_anchors = anchor_scale(samples, anchors) if anchors else None
            scaled += (
                [x * by_anchors for x in mine] if by_anchors else rescale(mine, reference_ms, ref)
            )
            refs.append(ref)
    if not refs:
        return raw, None, None
    return raw, scaled, statistics.median(refs)
