"""`Source`: what `data.pipeline` needs to know from a dataset, the one protocol of every
dataset module (toy_scenes, Cityscapes, ADE20K, Pets, DAVIS, your own folders).

Each dataset module defines `SOURCE`, an instance of `Source`; `data.pipeline.SOURCES` is the
registry (name -> source, own folders for any other name), and the pipeline asks the source,
never the dataset's identity:

    source = find_source("oxford_iiit_pet")      # in data.pipeline
    builder = source.builder(name, data_dir, builder_kwargs)
    source.num_classes(builder, override), source.is_video(builder), source.to_example(raw)

**Why a frozen dataclass, not a `typing.Protocol`.** Four of the six datasets (Cityscapes,
ADE20K, Pets, DAVIS) differ only in data: names, classes, splits, default preprocessing,
decoders, how to obtain the files and one `to_example` function. As instances of one
dataclass each is a single literal, and the shared behaviour (looking a prepared tfds builder
up by name, the "how to get the files" message, `prepare`) is written once, here. The two
datasets whose answers come from the builder instead (toy_scenes: configured from
`builder_kwargs` and generated on first use; own folders: classes and video-ness recorded in
the stored features) subclass it and override those methods. A Protocol would have each
module restate a dozen members that four of them share; `isinstance(x, Source)` still checks
a dataset against the contract.

Fields are the facts fixed for a dataset; methods are the answers that may depend on the
prepared builder (they default to the fields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow_datasets as tfds

from data.ops import Example
from nas.errors import UserError


def default_data_dir(data_dir: str | None) -> str:
    """`data_dir`, or tfds' default folder (~/tensorflow_datasets) when None."""
    return data_dir or str(tfds.core.constants.DATA_DIR)


@dataclasses.dataclass(frozen=True, eq=False)
class Source:
    """A dataset as `data.pipeline` reads it (module docstring).

    names: the full `data.name` values served (their heads, the part before "/", are this
    dataset's: another name under the same head is refused with the allowed list);
    to_example: a raw tfds example -> {"image", "mask", ["labelled"]} (`data.ops.Example`);
    classes: class names (their number is `num_classes` unless the builder says otherwise);
    video: examples are clips; train_split / eval_split, preprocess_train / preprocess_eval:
    the defaults of `default_data_config`; decoders: tfds decoders (SkipDecoding for what
    `to_example` decodes itself); get: name -> how to obtain the files, and manual: whether
    those files go into a manual_dir for `prepare` (else tfds downloads them itself);
    in_memory: read whole splits into numpy unless `data.in_memory` says otherwise;
    refused: names (full, or heads) a user may try for this dataset -> the one-line refusal.
    """

    names: tuple[str, ...]
    to_example: Callable[[dict[str, Any]], Example]
    classes: tuple[str, ...] = ()
    video: bool = False
    train_split: str = "train"
    eval_split: str = "validation"
    preprocess_train: str = "random_flip | normalize(-1, 1)"
    preprocess_eval: str = "normalize(-1, 1)"
    decoders: Any = None
    get: Mapping[str, str] = dataclasses.field(default_factory=dict)
    manual: bool = True
    in_memory: bool = False
    refused: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def claims(self, name: str) -> bool:
        """Whether `name` is this dataset's; a UserError for a name under one of its heads
        that it does not serve (a wrong variant) or a refused name."""
        head = name.split("/")[0]
        for refused in (name, head):
            if refused in self.refused:
                raise UserError(self.refused[refused])
        if head not in {n.split("/")[0] for n in self.names}:
            return False
        if name not in self.names:
            raise UserError(f"data.name: got {name!r}; allowed: {', '.join(self.names)}")
        return True

    def builder_kwargs(self, name: str) -> dict[str, Any]:
        """The default `data.builder_kwargs` of `name` (every knob, so each can be overridden
        from the command line); only toy_scenes has any."""
        return {}

    def builder(
        self, name: str, data_dir: str | None, builder_kwargs: Mapping[str, Any]
    ) -> tfds.core.DatasetBuilder:
        """The prepared tfds builder of `name` in `data_dir`; a UserError saying how to get
        the files when it is not prepared (nothing is downloaded here)."""
        if builder_kwargs:
            raise UserError(
                f"data.builder_kwargs: got {sorted(builder_kwargs)}; allowed: {{}} for "
                f"{name!r} (only toy_scenes takes builder_kwargs)"
            )
        try:
            builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            builder = None
        if builder is None or not builder.is_prepared():
            raise UserError(self.missing_message(name, data_dir))
        return builder

    def prepare(
        self,
        name: str,
        data_dir: str | None,
        manual_dir: str | None,
        builder_kwargs: Mapping[str, Any] | None,
    ) -> str:
        """Build `name` into `data_dir` from the files in `manual_dir` (download builders
        fetch their own); returns the prepared folder."""
        builder = tfds.builder(name, data_dir=data_dir)
        config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
        builder.download_and_prepare(download_config=config)
        return str(builder.data_path)

    def missing_message(self, name: str, data_dir: str | None) -> str:
        """The one-line error for `name` not prepared in `data_dir`: the files to get and the
        `prepare(...)` call that builds them once."""
        folder = default_data_dir(data_dir)
        text = f"data.name: {name!r} is not prepared in data_dir={folder}; "
        if not self.manual:
            return text + self.get[name]
        return text + (
            f'{self.get[name]} into a folder MANUAL, then run: python -c "from '
            f"data.pipeline import prepare; prepare('{name}', "
            f"data_dir='{folder}', manual_dir='MANUAL')\""
        )

    def num_classes(self, builder: tfds.core.DatasetBuilder, override: int | None) -> int:
        """Classes of the prepared dataset; `override` is `data.num_classes`, which only own
        folders read."""
        return len(self.classes)

    def class_names(self, builder: tfds.core.DatasetBuilder) -> tuple[str, ...]:
        """Class names, index = class id (empty when unknown)."""
        return self.classes

    def is_video(self, builder: tfds.core.DatasetBuilder) -> bool:
        """Whether examples are clips (B, T, H, W, 3) rather than images."""
        return self.video

    def raw_hw(self, builder: tfds.core.DatasetBuilder) -> tuple[int, int] | None:
        """(H, W) shared by every stored example, None when sizes vary."""
        return None

    def num_frames(self, builder: tfds.core.DatasetBuilder) -> int | None:
        """Frames of every stored clip, None for images or when it varies."""
        return None
