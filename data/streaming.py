"""Reading tfds splits: as `tf.data`, as numpy batches, and the streaming input path.

Large datasets stream through tf.data: files and a shuffle buffer are shuffled with the seed,
records are skipped *before* decoding when resuming, and each process reads its own
`tfds.even_splits` share. `finish` and `pad` shape every batch the same way for both of
`data.pipeline`'s paths (in-memory and streaming).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from data import ops
from data.labels import IGNORE_INDEX
from data.sources import Source
from nas.errors import UserError


def read_split(
    builder: tfds.core.DatasetBuilder,
    split: Any,
    decoders: Any = None,
    shuffle_files: bool = False,
    read_config: tfds.ReadConfig | None = None,
) -> tf.data.Dataset:
    """`builder`'s `split` as a tf.data.Dataset; an unknown split is a UserError."""
    try:
        return builder.as_dataset(
            split=split, decoders=decoders, shuffle_files=shuffle_files, read_config=read_config
        )
    except ValueError as e:  # e.g. "Unknown split 'test'. Should be one of [...]"
        raise UserError(f"data split: got {str(split)!r}: {e}") from None


def split_size(builder: tfds.core.DatasetBuilder, split: str) -> int | None:
    """Examples in `split`, or None when the builder does not know (e.g. a sliced split)."""
    try:
        return builder.info.splits[split].num_examples
    except (KeyError, ValueError):
        return None


def finish(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """numpy, mask int32 (255 = ignore), image float32."""
    out = {k: np.asarray(v) for k, v in batch.items()}
    out["mask"] = out["mask"].astype(np.int32)
    if out["image"].dtype != np.float32:
        out["image"] = out["image"].astype(np.float32)
    return out


def pad(
    batch: dict[str, np.ndarray], batch_size: int, template: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Pad a (possibly empty) batch to batch_size: mask 255, labelled False, image zeros."""
    template = template if template is not None else batch
    missing = batch_size - len(batch["mask"])
    if missing <= 0:
        return batch
    out = {}
    for k, v in batch.items():
        t = template[k]
        fill = IGNORE_INDEX if k == "mask" else 0
        out[k] = np.concatenate([v, np.full((missing,) + t.shape[1:], fill, t.dtype)], axis=0)
    return out


def iterate(ds: tf.data.Dataset, field: str) -> Iterator[dict[str, np.ndarray]]:
    """numpy batches; a shape clash inside tf.data becomes a one-line UserError."""
    try:
        for batch in tfds.as_numpy(ds):
            yield finish(batch)
    except tf.errors.InvalidArgumentError as e:
        raise UserError(
            f"data.{field}: {e.message.splitlines()[0]}; allowed: a chain whose "
            "examples share one size (end it with resize / random_crop / "
            "center_crop)"
        ) from None


def stream_train(
    data_cfg: ml_collections.ConfigDict,
    builder: tfds.core.DatasetBuilder,
    source: Source,
    chain: ops.Chain,
    batch_size: int,
    seed: int,
    start_step: int,
    process_index: int,
    process_count: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Endless shuffled training batches read through tf.data, resumable at `start_step`."""
    split = data_cfg.train_split
    if process_count > 1:
        split = tfds.even_splits(split, n=process_count)[process_index]
    read = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
    ds = read_split(
        builder,
        split,
        shuffle_files=True,
        read_config=read,
        decoders=source.decoders,
    )
    ds = ds.shuffle(
        data_cfg.get("shuffle_buffer", 1024), seed=seed, reshuffle_each_iteration=True
    ).repeat()
    # skip undecoded records: resuming costs reading, not decoding
    ds = ds.enumerate().skip(start_step * batch_size)

    def prepare(i: tf.Tensor, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        example_seed = tf.stack([tf.constant(seed, tf.int64), i * process_count + process_index])
        return chain(source.to_example(raw), example_seed)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return iterate(ds.batch(batch_size, drop_remainder=True).prefetch(2), "preprocess_train")


def stream_eval(
    builder: tfds.core.DatasetBuilder,
    source: Source,
    split: str,
    chain: ops.Chain,
    batch_size: int,
    process_index: int,
    process_count: int,
) -> Iterator[dict[str, np.ndarray]]:
    """Evaluation batches of this process's share, padded so every process yields as many."""
    size = split_size(builder, split)
    share = tfds.even_splits(split, n=process_count)[process_index] if process_count > 1 else split
    ds = read_split(builder, share, shuffle_files=False, decoders=source.decoders)
    ds = ds.enumerate().map(
        lambda i, raw: chain(source.to_example(raw), tf.stack([tf.constant(0, tf.int64), i])),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    num_batches = math.ceil(math.ceil(size / process_count) / batch_size) if size else None
    yielded, last = 0, None
    for last in iterate(ds.batch(batch_size).prefetch(2), "preprocess_eval"):
        yield pad(last, batch_size)
        yielded += 1
    while num_batches is not None and yielded < num_batches and last is not None:
        yield pad({k: v[:0] for k, v in last.items()}, batch_size, last)
        yielded += 1
