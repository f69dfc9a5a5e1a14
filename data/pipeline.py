"""Batches for training and evaluation: the contract between the data layer and the trainer.

    info = dataset_info(cfg.data)
    for step, batch in zip(range(start, steps), train_batches(cfg.data, 32, seed=0,
                                                              start_step=start)):
        ...  # batch["image"] float32 (B, H, W, 3) normalised, batch["mask"] int32 (B, H, W)

`data_cfg` is the `data` section of an experiment config (`default_data_config`): `name`
picks a dataset (`SOURCES`: `toy_scenes/{images,binary,video}`,
`cityscapes/semantic_segmentation[_extra]`, `ade20k`, `oxford_iiit_pet`,
`davis/{480p,full_resolution}`; any other name is a folder stored with `segnas data store`),
`preprocess_train` / `preprocess_eval` are op specs (`data.ops`). Everything the pipeline
knows about a dataset comes from its `data.sources.Source`: a new dataset is a module with a
`SOURCE`, added to `SOURCES`.

**Determinism.** Training batch `k` is a pure function of `(seed, k)`: example positions
`k * B * P + i` (P processes, B per process, process p owning `i` in `[p * B, (p + 1) * B)`)
walk a fresh permutation of the split every epoch (`default_rng([seed, epoch])`), and example
`j` is augmented with the stateless seed `(seed, j)`. A run resumed at `start_step` therefore
sees exactly the batches of an uninterrupted run.

**Two paths.** Small datasets whose examples share one shape (toy_scenes; `in_memory=True`
for others) are read once into numpy; each batch is gathered by index and augmented by one
`tf.function` over the batch (on 2 CPU cores, a tf.data stream running beside XLA was ~3x
slower). Large datasets stream through tf.data:
files and a shuffle buffer are shuffled with the seed, records are skipped *before* decoding
when resuming, and each process reads its own `tfds.even_splits` share. The streaming path is
deterministic too, but its order is not the in-memory path's.

Clips (`is_video`) come as `image` (B, T, H, W, 3), `mask` (B, T, H, W) and `labelled` (B, T).

Real datasets are never downloaded here (tfds always runs with prepared data); a missing one
raises a one-line `UserError` naming the files to get and the `prepare(...)` call that builds
them once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data import ade20k, cityscapes, davis, ops, own, pets, streaming, toy_scenes
from data.labels import IGNORE_INDEX
from data.sources import Source
from nas.errors import UserError

# The registry: the named datasets (each claims its names, see `Source.claims`) and, for
# every other name, own folders, whose refusal to `prepare` lists the named ones.
SOURCES: tuple[Source, ...] = (
    toy_scenes.SOURCE,
    cityscapes.SOURCE,
    ade20k.SOURCE,
    pets.SOURCE,
    davis.SOURCE,
)
FOLDERS: Source = dataclasses.replace(own.SOURCE, others=tuple(n for s in SOURCES for n in s.names))


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a dataset.

    `image_size` is the (H, W) of the stored examples, before any preprocessing (None when
    it varies): a model at a larger resolution would only see upsampled images, which a
    search can refuse. `image_shape` is the (H, W) of training batches (after
    `preprocess_train`), None when it varies; `eval_image_shape` the same for
    `preprocess_eval`. `num_frames` is the clip length of a video dataset's batches (None for
    images or when it varies).
    """

    num_classes: int
    ignore_index: int = IGNORE_INDEX
    image_shape: tuple[int, int] | None = None
    is_video: bool = False
    eval_image_shape: tuple[int, int] | None = None
    num_frames: int | None = None
    class_names: tuple[str, ...] = ()
    train_size: int | None = None
    eval_size: int | None = None
    image_size: tuple[int, int] | None = None


def default_data_config(name: str = "toy_scenes/images") -> ml_collections.ConfigDict:
    """The `data` section of an experiment config, with the dataset's own defaults."""
    source = find_source(name)
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.data_dir = ml_collections.FieldReference(None, field_type=str)
    cfg.train_split = source.train_split
    cfg.eval_split = source.eval_split
    cfg.preprocess_train = source.preprocess_train
    cfg.preprocess_eval = source.preprocess_eval
    # the source's builder knobs (toy_scenes: every ToyScenesConfig field, sizes, height,
    # width, num_classes, seed, ...), so that `--config.data.builder_kwargs.height=96` works
    cfg.builder_kwargs = ml_collections.ConfigDict(source.builder_kwargs(name))
    cfg.num_classes = ml_collections.FieldReference(None, field_type=int)  # own datasets only
    cfg.in_memory = ml_collections.FieldReference(None, field_type=bool)  # None: source.in_memory
    cfg.shuffle_buffer = 1024  # streaming path: examples in the shuffle buffer
    return cfg


def find_source(name: str) -> Source:
    """The source of dataset `name`: the named dataset that claims it, else own folders."""
    return next((s for s in SOURCES if s.claims(name)), FOLDERS)


# --- builders ------------------------------------------------------------------------------


def _builder(data_cfg: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
    """The prepared tfds builder; toy_scenes is generated on first use, others must exist."""
    return find_source(data_cfg.name).builder(
        data_cfg.name, data_cfg.data_dir, dict(data_cfg.get("builder_kwargs") or {})
    )


def prepare(
    name: str,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    builder_kwargs: dict[str, Any] | None = None,
) -> str:
    """Build dataset `name` into `data_dir` from files in `manual_dir` (the only place segnas
    lets tfds touch the network: download builders such as DAVIS fetch their archives).

    toy_scenes needs no files and takes `builder_kwargs`. Returns the prepared folder.
    """
    return find_source(name).prepare(name, data_dir, manual_dir, builder_kwargs)


def _chain(data_cfg: ml_collections.ConfigDict, field: str) -> ops.Chain:
    try:
        return ops.parse(data_cfg[field], field=f"data.{field}")
    except ValueError as e:
        raise UserError(str(e)) from None


def dataset_info(data_cfg: ml_collections.ConfigDict) -> DatasetInfo:
    """Classes, ignore index, batch shapes and sizes of the dataset `data_cfg` names."""
    source = find_source(data_cfg.name)
    builder = _builder(data_cfg)
    train, evaluation = _chain(data_cfg, "preprocess_train"), _chain(data_cfg, "preprocess_eval")
    raw_hw = source.raw_hw(builder)
    video = source.is_video(builder)
    return DatasetInfo(
        num_classes=source.num_classes(builder, data_cfg.get("num_classes")),
        image_shape=train.output_hw(raw_hw),
        is_video=video,
        eval_image_shape=evaluation.output_hw(raw_hw),
        num_frames=_clip_frames(train, source.num_frames(builder)) if video else None,
        class_names=source.class_names(builder),
        train_size=streaming.split_size(builder, data_cfg.train_split),
        eval_size=streaming.split_size(builder, data_cfg.eval_split),
        image_size=raw_hw,
    )


def _clip_frames(chain: ops.Chain, stored: int | None) -> int | None:
    """Frames per clip after `chain`: its last temporal crop's, else the stored clips'."""
    for op in reversed(chain.ops):
        if isinstance(op, (ops.RandomTemporalCrop, ops.TemporalCrop)):
            return op.num_frames
    return stored


# --- the in-memory path --------------------------------------------------------------------

_MATERIALISED: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _materialise(
    builder: tfds.core.DatasetBuilder, split: str, source: Source
) -> dict[str, np.ndarray]:
    """A whole split as numpy arrays in the common form, read once per process."""
    key = (str(builder.data_path), split)
    if key not in _MATERIALISED:
        if len(_MATERIALISED) >= 8:  # a search may touch many toy variants; keep a few
            _MATERIALISED.pop(next(iter(_MATERIALISED)))
        ds = streaming.read_split(builder, split, decoders=source.decoders)
        ds = ds.map(source.to_example)
        try:
            n = int(ds.cardinality())
            _MATERIALISED[key] = tfds.as_numpy(ds.batch(max(n, 1)).get_single_element())
        except tf.errors.InvalidArgumentError as e:
            raise UserError(
                f"data.in_memory: examples of {builder.name} split {split!r} "
                f"differ in shape ({e.message.splitlines()[0]}); allowed: "
                "in_memory=False"
            ) from None
    return _MATERIALISED[key]


def _batch_fn(chain: ops.Chain, raw: dict[str, np.ndarray], field: str):
    """A tf.function augmenting a whole batch: (examples, seeds (B, 2)) -> float32 batch.

    Cached per (chain, example shapes): a trainer evaluates many times, and tracing the
    chain costs seconds on a busy CPU.
    """
    signature = tuple((k, v.shape[1:], v.dtype.str) for k, v in raw.items())
    return _traced_batch_fn(chain, signature, field)


@functools.lru_cache(maxsize=16)
def _traced_batch_fn(
    chain: ops.Chain, signature: tuple[tuple[str, tuple[int, ...], str], ...], field: str
):
    raw_hw = signature[[k for k, _, _ in signature].index("mask")][1][-2:]
    out_hw = chain.output_hw(tuple(raw_hw))
    if out_hw is None:
        raise UserError(
            f"data.{field}: got {chain.spec!r}, whose output size varies per "
            "example; allowed: a chain with resize / random_crop / center_crop "
            "after any random_scale"
        )
    spec = {k: tf.TensorSpec(shape, tf.as_dtype(np.dtype(dtype))) for k, shape, dtype in signature}
    probe = chain(
        {k: tf.zeros(s.shape, s.dtype) for k, s in spec.items()}, tf.zeros([2], tf.int64)
    )  # static output shapes, e.g. after a temporal crop
    out_sig = {k: tf.TensorSpec(v.shape, v.dtype) for k, v in probe.items()}

    @tf.function(jit_compile=False, reduce_retracing=True)
    def run(examples: dict[str, tf.Tensor], seeds: tf.Tensor) -> dict[str, tf.Tensor]:
        return tf.map_fn(
            lambda args: chain(args[0], args[1]),
            (examples, seeds),
            fn_output_signature=out_sig,
            parallel_iterations=16,
        )

    return run


def _in_memory(data_cfg: ml_collections.ConfigDict) -> bool:
    flag = data_cfg.get("in_memory")
    return find_source(data_cfg.name).in_memory if flag is None else bool(flag)


def _check_batch(batch_size: int, process_index: int, process_count: int) -> None:
    if batch_size < 1:
        raise UserError(f"batch_size: got {batch_size!r}; allowed: >= 1")
    if process_count < 1 or not 0 <= process_index < process_count:
        raise UserError(
            f"process_index: got {process_index!r} of {process_count!r}; allowed: "
            "0 <= process_index < process_count"
        )


def train_batches(
    data_cfg: ml_collections.ConfigDict,
    batch_size: int,
    *,
    seed: int,
    start_step: int = 0,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Infinite training batches; batch k is a function of (seed, k) (module docstring).

    `batch_size` is per process; yields {"image": float32 (B, H, W, 3), "mask": int32
    (B, H, W)} (clips: (B, T, ...) and "labelled" (B, T)).
    """
    _check_batch(batch_size, process_index, process_count)
    if start_step < 0:
        raise UserError(f"start_step: got {start_step!r}; allowed: >= 0")
    source = find_source(data_cfg.name)
    builder = _builder(data_cfg)
    chain = _chain(data_cfg, "preprocess_train")
    if not _in_memory(data_cfg):
        return streaming.stream_train(
            data_cfg,
            builder,
            source,
            chain,
            batch_size,
            seed,
            start_step,
            process_index,
            process_count,
        )
    raw = _materialise(builder, data_cfg.train_split, source)
    return _memory_train(raw, chain, batch_size, seed, start_step, process_index, process_count)


def _memory_train(
    raw: dict[str, np.ndarray],
    chain: ops.Chain,
    batch_size: int,
    seed: int,
    start_step: int,
    process_index: int,
    process_count: int,
) -> Iterator[dict[str, np.ndarray]]:
    run = _batch_fn(chain, raw, "preprocess_train")
    n = len(raw["mask"])
    if n == 0:
        raise UserError("data.train_split: the split is empty; allowed: a split with examples")
    global_batch = batch_size * process_count
    perms: dict[int, np.ndarray] = {}

    def perm(epoch: int) -> np.ndarray:  # a batch spans at most two epochs: keep two
        if epoch not in perms:
            for old in [e for e in perms if e < epoch - 1]:
                del perms[old]
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        return perms[epoch]

    step = start_step
    while True:
        first = step * global_batch + process_index * batch_size
        positions = np.arange(first, first + batch_size, dtype=np.int64)
        index = np.array([perm(int(j // n))[j % n] for j in positions])
        seeds = np.stack([np.full(batch_size, seed, np.int64), positions], axis=1)
        yield streaming.finish(run({k: v[index] for k, v in raw.items()}, tf.constant(seeds)))
        step += 1


def eval_batches(
    data_cfg: ml_collections.ConfigDict,
    batch_size: int,
    *,
    split: str | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """One pass over `split` (default data.eval_split) in a fixed order, `preprocess_eval`
    applied; each process gets a disjoint share and the same number of batches; the last
    batches are padded to `batch_size` with mask 255 (ignored by the metrics)."""
    _check_batch(batch_size, process_index, process_count)
    source = find_source(data_cfg.name)
    builder = _builder(data_cfg)
    split = split or data_cfg.eval_split
    chain = _chain(data_cfg, "preprocess_eval")
    if _in_memory(data_cfg):
        return _memory_eval(
            _materialise(builder, split, source), chain, batch_size, process_index, process_count
        )
    return streaming.stream_eval(
        builder, source, split, chain, batch_size, process_index, process_count
    )


def _memory_eval(
    raw: dict[str, np.ndarray],
    chain: ops.Chain,
    batch_size: int,
    process_index: int,
    process_count: int,
) -> Iterator[dict[str, np.ndarray]]:
    run = _batch_fn(chain, raw, "preprocess_eval")
    n = len(raw["mask"])
    share = np.arange(process_index, n, process_count)  # strided: shares differ by <= 1
    num_batches = math.ceil(math.ceil(n / process_count) / batch_size)
    template = None
    for b in range(num_batches):
        index = share[b * batch_size : (b + 1) * batch_size]
        if len(index):
            seeds = np.stack([np.zeros(len(index), np.int64), index], axis=1)
            template = streaming.finish(
                run({k: v[index] for k, v in raw.items()}, tf.constant(seeds))
            )
            yield streaming.pad(template, batch_size)
        else:  # this process's share is used up; others still have a batch: pad a whole one
            if template is None:
                template = streaming.finish(
                    run({k: v[:1] for k, v in raw.items()}, tf.zeros([1, 2], tf.int64))
                )
            yield streaming.pad({k: v[:0] for k, v in template.items()}, batch_size, template)
