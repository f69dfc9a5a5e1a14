"""Batches for training and evaluation: the contract between the data layer and the trainer.

    info = dataset_info(cfg.data)
    for step, batch in zip(range(start, steps), train_batches(cfg.data, 32, seed=0,
                                                              start_step=start)):
        ...  # batch["image"] float32 (B, H, W, 3) normalised, batch["mask"] int32 (B, H, W)

`data_cfg` is the `data` section of an experiment config (`default_data_config`): `name`
picks a dataset (`DATASETS`: `toy_scenes/{images,binary,video}`,
`cityscapes/semantic_segmentation[_extra]`, `ade20k`, `oxford_iiit_pet`,
`davis/{480p,full_resolution}`; any other name is a folder stored with `segnas data store`),
`preprocess_train` / `preprocess_eval` are op specs (`data.ops`).

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
from types import ModuleType
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data import ade20k, cityscapes, davis, ops, own, pets, streaming, toy_scenes
from nas.errors import UserError

IGNORE_INDEX = ops.IGNORE_INDEX
# name (before "/") -> dataset module. A module provides NAMES (the full names it serves),
# NUM_CLASSES, CLASS_NAMES, IS_VIDEO, TRAIN_SPLIT / EVAL_SPLIT, PREPROCESS_TRAIN / _EVAL
# (defaults), DECODERS (tfds decoders, SkipDecoding for what `to_example` decodes itself),
# MANUAL / GET (how to obtain the files) and `to_example(raw) -> {"image", "mask", ...}`.
# toy_scenes and own (any other name) read classes and video-ness from the builder.
DATASETS: dict[str, ModuleType] = {
    "toy_scenes": toy_scenes,
    "cityscapes": cityscapes,
    "ade20k": ade20k,
    "oxford_iiit_pet": pets,
    "davis": davis,
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model and a trainer need to know about a dataset.

    `image_shape` is the (H, W) of training batches (after `preprocess_train`), None when it
    varies; `eval_image_shape` the same for `preprocess_eval`. `num_frames` is the clip length
    of a video dataset's batches (None for images or when it varies).
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


def default_data_config(name: str = "toy_scenes/images") -> ml_collections.ConfigDict:
    """The `data` section of an experiment config, with the dataset's own defaults."""
    module = _module(name)
    cfg = ml_collections.ConfigDict()
    cfg.name = name
    cfg.data_dir = ml_collections.FieldReference(None, field_type=str)
    cfg.train_split = module.TRAIN_SPLIT
    cfg.eval_split = module.EVAL_SPLIT
    cfg.preprocess_train = module.PREPROCESS_TRAIN
    cfg.preprocess_eval = module.PREPROCESS_EVAL
    # toy_scenes: every ToyScenesConfig knob (sizes, height, width, num_classes, seed, ...),
    # listed so that `--config.data.builder_kwargs.height=96` works from the command line
    knobs = {}
    if module is toy_scenes:
        base = toy_scenes.config_for(name.split("/")[1])
        knobs = {k: getattr(base, k) for k in toy_scenes.KNOBS}
    cfg.builder_kwargs = ml_collections.ConfigDict(knobs)
    cfg.num_classes = ml_collections.FieldReference(None, field_type=int)  # own datasets only
    cfg.in_memory = ml_collections.FieldReference(None, field_type=bool)  # None: toy only
    cfg.shuffle_buffer = 1024  # streaming path: examples in the shuffle buffer
    return cfg


def _module(name: str) -> ModuleType:
    head = name.split("/")[0]
    if head == "scene_parse150":
        raise UserError(ade20k.SCENE_PARSE150_MESSAGE)
    module = DATASETS.get(head, own)
    if module is not own and name not in module.NAMES:
        raise UserError(f"data.name: got {name!r}; allowed: {', '.join(module.NAMES)}")
    return module


def _data_dir(data_dir: str | None) -> str:
    return data_dir or str(tfds.core.constants.DATA_DIR)


def _missing_message(module: ModuleType, name: str, data_dir: str | None) -> str:
    if module is own:
        return own.missing_message(name, _data_dir(data_dir))
    text = f"data.name: {name!r} is not prepared in data_dir={_data_dir(data_dir)}; "
    if not module.MANUAL:
        return text + module.GET[name]
    return text + (
        f'{module.GET[name]} into a folder MANUAL, then run: python -c "from '
        f"data.pipeline import prepare; prepare('{name}', "
        f"data_dir='{_data_dir(data_dir)}', manual_dir='MANUAL')\""
    )


# --- builders ------------------------------------------------------------------------------


def _builder(data_cfg: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
    """The prepared tfds builder; toy_scenes is generated on first use, others must exist."""
    module = _module(data_cfg.name)
    kwargs = dict(data_cfg.get("builder_kwargs") or {})
    if module is toy_scenes:
        try:
            config = toy_scenes.config_for(data_cfg.name.split("/")[1], kwargs)
        except ValueError as e:
            raise UserError(f"data.builder_kwargs: {e}") from None
        builder = tfds.builder("toy_scenes", config=config, data_dir=data_cfg.data_dir)
        if not builder.is_prepared():
            try:
                builder.download_and_prepare()  # procedural: nothing is downloaded
            except FileExistsError:
                # a concurrent process (a parallel search) finished the same deterministic
                # data first; its copy is identical, so read that one
                builder = tfds.builder("toy_scenes", config=config, data_dir=data_cfg.data_dir)
        return builder
    if kwargs:
        raise UserError(
            f"data.builder_kwargs: got {sorted(kwargs)}; allowed: {{}} for "
            f"{data_cfg.name!r} (only toy_scenes takes builder_kwargs)"
        )
    try:
        builder = tfds.builder(data_cfg.name, data_dir=data_cfg.data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        builder = None
    if builder is None or not builder.is_prepared():
        raise UserError(_missing_message(module, data_cfg.name, data_cfg.data_dir))
    return builder


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
    module = _module(name)
    if module is toy_scenes:
        return str(
            _builder(
                ml_collections.ConfigDict(
                    {"name": name, "data_dir": data_dir, "builder_kwargs": builder_kwargs or {}}
                )
            ).data_path
        )
    if module is own:
        raise UserError(
            f"name: got {name!r}; own folders are stored with `segnas data store`, not "
            "prepared; allowed: " + ", ".join(n for m in DATASETS.values() for n in m.NAMES)
        )
    builder = tfds.builder(name, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)
    return str(builder.data_path)


def _is_video(module: ModuleType, builder: tfds.core.DatasetBuilder) -> bool:
    if module is toy_scenes:
        return builder.builder_config.kind == "video"
    if module is own:
        return own.is_video(builder)
    return module.IS_VIDEO


def _num_classes(data_cfg: ml_collections.ConfigDict, builder: tfds.core.DatasetBuilder) -> int:
    module = _module(data_cfg.name)
    if module is toy_scenes:
        return builder.builder_config.num_classes
    if module is own:
        return own.num_classes(builder, data_cfg.get("num_classes"))
    return module.NUM_CLASSES


def _chain(data_cfg: ml_collections.ConfigDict, field: str) -> ops.Chain:
    try:
        return ops.parse(data_cfg[field], field=f"data.{field}")
    except ValueError as e:
        raise UserError(str(e)) from None


def _raw_hw(builder: tfds.core.DatasetBuilder, module: ModuleType) -> tuple[int, int] | None:
    if module is toy_scenes:
        c = builder.builder_config
        return (c.height, c.width)
    return None


def dataset_info(data_cfg: ml_collections.ConfigDict) -> DatasetInfo:
    """Classes, ignore index, batch shapes and sizes of the dataset `data_cfg` names."""
    module = _module(data_cfg.name)
    builder = _builder(data_cfg)
    train, evaluation = _chain(data_cfg, "preprocess_train"), _chain(data_cfg, "preprocess_eval")
    raw_hw = _raw_hw(builder, module)
    video = _is_video(module, builder)
    num_frames = _clip_frames(train, builder, module) if video else None
    return DatasetInfo(
        num_classes=_num_classes(data_cfg, builder),
        image_shape=train.output_hw(raw_hw),
        is_video=video,
        eval_image_shape=evaluation.output_hw(raw_hw),
        num_frames=num_frames,
        class_names=_class_names(module, builder),
        train_size=streaming.split_size(builder, data_cfg.train_split),
        eval_size=streaming.split_size(builder, data_cfg.eval_split),
    )


def _class_names(module: ModuleType, builder: tfds.core.DatasetBuilder) -> tuple[str, ...]:
    if module is toy_scenes:
        c = builder.builder_config
        return (
            ("background", "foreground") if c.labels == "foreground" else ("background",) + c.shapes
        )
    return tuple(getattr(module, "CLASS_NAMES", ()))


def _clip_frames(
    chain: ops.Chain, builder: tfds.core.DatasetBuilder, module: ModuleType
) -> int | None:
    for op in reversed(chain.ops):
        if isinstance(op, (ops.RandomTemporalCrop, ops.TemporalCrop)):
            return op.num_frames
    return builder.builder_config.num_frames if module is toy_scenes else None


# --- the in-memory path --------------------------------------------------------------------

_MATERIALISED: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _materialise(
    builder: tfds.core.DatasetBuilder, split: str, module: ModuleType
) -> dict[str, np.ndarray]:
    """A whole split as numpy arrays in the common form, read once per process."""
    key = (str(builder.data_path), split)
    if key not in _MATERIALISED:
        if len(_MATERIALISED) >= 8:  # a search may touch many toy variants; keep a few
            _MATERIALISED.pop(next(iter(_MATERIALISED)))
        ds = streaming.read_split(builder, split, decoders=getattr(module, "DECODERS", None))
        ds = ds.map(module.to_example)
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
    return _module(data_cfg.name) is toy_scenes if flag is None else bool(flag)


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
    module = _module(data_cfg.name)
    builder = _builder(data_cfg)
    chain = _chain(data_cfg, "preprocess_train")
    if not _in_memory(data_cfg):
        return streaming.stream_train(
            data_cfg,
            builder,
            module,
            chain,
            batch_size,
            seed,
            start_step,
            process_index,
            process_count,
        )
    raw = _materialise(builder, data_cfg.train_split, module)
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
    module = _module(data_cfg.name)
    builder = _builder(data_cfg)
    split = split or data_cfg.eval_split
    chain = _chain(data_cfg, "preprocess_eval")
    if _in_memory(data_cfg):
        return _memory_eval(
            _materialise(builder, split, module), chain, batch_size, process_index, process_count
        )
    return streaming.stream_eval(
        builder, module, split, chain, batch_size, process_index, process_count
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
