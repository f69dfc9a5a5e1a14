"""data.sources: every dataset is a `Source`, every name has one, and a new one needs no
change to data.pipeline."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import numpy as np
import pytest

import data
from data import ops, own, pipeline, toy_scenes
from data.sources import Source
from nas.errors import UserError

ALL = (*pipeline.SOURCES, pipeline.FOLDERS)


def test_every_dataset_module_registers_a_source():
    modules = [
        importlib.import_module(f"data.{m.name}") for m in pkgutil.iter_modules(data.__path__)
    ]
    defined = {id(m.SOURCE) for m in modules if hasattr(m, "SOURCE")}
    # own's SOURCE is registered as FOLDERS: a copy that lists the other datasets' names
    assert defined == {id(s) for s in pipeline.SOURCES} | {id(own.SOURCE)}
    assert type(pipeline.FOLDERS) is type(own.SOURCE)
    for source in ALL:
        assert isinstance(source, Source) and callable(source.to_example)
        assert isinstance(source.in_memory, bool) and isinstance(source.video, bool)
        for split in (source.train_split, source.eval_split):
            assert isinstance(split, str) and split
        ops.parse(source.preprocess_train)
        ops.parse(source.preprocess_eval)
        for name in source.names:
            assert isinstance(source.builder_kwargs(name), dict)
            if source.get:  # real data: the message says how to get each name's files
                assert source.get[name] in source.missing_message(name, "/nowhere")


def test_every_name_maps_to_exactly_one_source():
    names = [n for s in pipeline.SOURCES for n in s.names]
    assert len(names) == len(set(names))
    for source in pipeline.SOURCES:
        for name in source.names:
            assert [s for s in ALL if s.claims(name)] == [source]
            assert pipeline.find_source(name) is source
    assert pipeline.find_source("my_folder") is pipeline.FOLDERS
    assert pipeline.FOLDERS.others == tuple(names)
    with pytest.raises(UserError, match="allowed: davis/480p, davis/full_resolution"):
        pipeline.find_source("davis/2016")


@dataclasses.dataclass(frozen=True, eq=False)
class _Backed(Source):
    """A new dataset for the test: tiny toy_scenes binary scenes under another name."""

    def builder(self, name, data_dir, builder_kwargs):
        kwargs = {"height": 16, "width": 16, "train_size": 6, "validation_size": 3}
        return toy_scenes.SOURCE.builder("toy_scenes/binary", data_dir, {**kwargs, "test_size": 0})

    def raw_hw(self, builder):
        return (16, 16)


def _inverted(raw):
    example = toy_scenes.to_example(raw)
    return {"image": example["image"], "mask": 1 - example["mask"]}  # background is class 1


def test_a_new_source_flows_through_the_pipeline_unchanged(toy_dir, monkeypatch):
    fake = _Backed(
        names=("fake/tiny", "fake/other"),
        to_example=_inverted,
        classes=("shape", "backdrop"),
        eval_split="validation",
        preprocess_train="random_crop(8, 8) | normalize",
        in_memory=True,
    )
    monkeypatch.setattr(pipeline, "SOURCES", (*pipeline.SOURCES, fake))
    cfg = pipeline.default_data_config("fake/tiny")
    assert cfg.preprocess_train == "random_crop(8, 8) | normalize" and cfg.in_memory is None
    cfg.data_dir = toy_dir
    assert pipeline.dataset_info(cfg) == pipeline.DatasetInfo(
        num_classes=2,
        image_shape=(8, 8),
        eval_image_shape=(16, 16),
        class_names=("shape", "backdrop"),
        train_size=6,
        eval_size=3,
        image_size=(16, 16),  # the source's raw_hw
    )
    batch = next(pipeline.train_batches(cfg, 4, seed=0))
    assert batch["image"].shape == (4, 8, 8, 3) and set(np.unique(batch["mask"])) <= {0, 1}
    evaluation = list(pipeline.eval_batches(cfg, 2))
    assert len(evaluation) == 2 and (evaluation[-1]["mask"][1] == 255).all()
    with pytest.raises(UserError, match="allowed: fake/tiny, fake/other"):
        pipeline.dataset_info(pipeline.default_data_config("fake/big"))
