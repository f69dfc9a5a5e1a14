"""Latency tables: JSON round trip, atomic writes, every load error, environment checks."""

from __future__ import annotations

import json

import pytest

from nas import io as io_mod
from nas.errors import UserError
from nas.latency.table import (
    SCHEMA,
    LatencyTable,
    default_path,
    describe_difference,
    environment,
    load_table,
)

ENV = {
    "target": "litert-cpu",
    "threads": 1,
    "clock": "thread-cpu",
    "device": "CPU X",
    "cores": 2,
    "machine": "x86_64",
    "system": "Linux",
    "runtime": {"ai-edge-litert": "2.3.0", "jax": "0.10.2", "segnas": "0.1.0"},
}
ENTRY = {
    "median_ms": 0.5,
    "p10_ms": 0.45,
    "p90_ms": 0.6,
    "mad_ms": 0.02,
    "n": 30,
    "kind": "ConvBNAct",
    "fields": {"kernel": 3},
    "inputs": [[1, 8, 8, 3]],
    "macs": 10,
}


def _table(**kw) -> LatencyTable:
    return LatencyTable(
        dict(ENV),
        {"ConvBNAct@1x8x8x3#00": dict(ENTRY)},
        calibration={"scale": 1.1, "offset_ms": 0.2, "n": 3, "points": []},
        settings={"rounds": 30},
        space={"encoder": ["mobilenet_v3_small"]},
        **kw,
    )


def test_round_trip(tmp_path):
    t = _table()
    path = t.save(tmp_path / "sub" / "t.json")
    loaded = load_table(path)
    assert loaded.to_dict() == t.to_dict()
    assert loaded.path == path and loaded.target == "litert-cpu" and loaded.threads == 1
    raw = json.loads(path.read_text())
    assert raw["schema"] == SCHEMA == "segnas.latency_table/1"
    assert raw["entries"]["ConvBNAct@1x8x8x3#00"]["median_ms"] == 0.5
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.json"]  # no temp file left


def test_a_renamed_block_kind_keeps_its_measurement(tmp_path):
    # The U-Net decoder was called Seed000Decoder: same program, same key after the kind.
    raw = _table().to_dict()
    raw["entries"]["Seed000Decoder@1x16x16x2#ab"] = dict(ENTRY, kind="Seed000Decoder")
    path = tmp_path / "old.json"
    path.write_text(json.dumps(raw))
    entries = load_table(path).entries
    assert "UNetDecoder@1x16x16x2#ab" in entries and "Seed000Decoder@1x16x16x2#ab" not in entries


def test_failed_save_keeps_the_old_table(tmp_path, monkeypatch):
    path = _table().save(tmp_path / "t.json")
    before = path.read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(io_mod.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        _table().save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "table: file .* not found; allowed: a table written by `segnas latency build`"),
        (
            "{not json",
            r"malformed JSON \(Expecting property name enclosed in double quotes at "
            r"line 1 column 2\)",
        ),
        (b"\xff\xfe\x00garbage", r"cannot read .* \(UnicodeDecodeError\)"),
        ("[1, 2]", "got a JSON list; allowed: a segnas latency table"),
        ('{"schema": "other/2"}', "schema got 'other/2'; allowed: 'segnas.latency_table/1'"),
        (
            '{"schema": "segnas.latency_table/1", "environment": 3, "entries": {}}',
            "environment got 3; allowed: an object with target",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, "entries": []}',
            "entries got list; allowed",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, '
            '"entries": {"k": {"n": 3}}}',
            r"entries\['k'\].median_ms missing, negative or not a",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, '
            '"entries": {"k": {"median_ms": -1.0, "n": 3}}}',
            r"entries\['k'\].median_ms missing, neg",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, '
            '"entries": {"k": {"median_ms": true, "n": 3}}}',
            r"entries\['k'\].median_ms",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, '
            '"entries": {}, "calibration": {"scale": "big"}}',
            "calibration got .*; allowed: null",
        ),
        (
            '{"schema": "segnas.latency_table/1", "environment": {"target": "x"}, '
            '"entries": {}, "reference": {"median_ms": 0}}',
            "reference got .*; allowed: null or an object with a positive number median_ms",
        ),
    ],
)
def test_bad_files_are_one_line_user_errors(tmp_path, content, message):
    path = tmp_path / "t.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message) as e:
        load_table(path)
    assert "\n" not in str(e.value)


def test_unreadable_path(tmp_path):
    with pytest.raises(UserError, match=r"cannot read .* \(Is a directory\)"):
        load_table(tmp_path)


def test_environment_of_this_machine():
    env = environment("litert-cpu", 1, "thread-cpu")
    assert env["target"] == "litert-cpu" and env["threads"] == 1
    assert env["runtime"]["ai-edge-litert"] == "2.3.0" and env["runtime"]["jax"] == "0.10.2"
    assert env["cores"] >= 1 and env["device"]
    assert env == environment("litert-cpu", 1, "thread-cpu")  # stable: no dates inside
    assert default_path("litert-cpu", 1).as_posix() == "latency_tables/litert-cpu_t1.json"


def test_foreign_environment_is_refused_unless_allowed():
    t = _table()
    other = {**ENV, "device": "Pixel 7", "runtime": {**ENV["runtime"], "jax": "0.11.0"}}
    assert describe_difference(ENV, other) == (
        "device: 'CPU X' vs 'Pixel 7'; runtime.jax: '0.10.2' vs '0.11.0'"
    )
    with pytest.raises(
        UserError,
        match="measured in another environment than this machine "
        r"\(device: 'CPU X' vs 'Pixel 7'; runtime.jax.*--allow-foreign",
    ):
        t.check_environment(other, "this machine", allow_foreign=False)
    t.check_environment(other, "this machine", allow_foreign=True)
    t.check_environment(dict(ENV), "this machine", allow_foreign=False)


def test_merge():
    a, b = _table(), _table()
    b.entries = {"X@1#1": dict(ENTRY), "ConvBNAct@1x8x8x3#00": {**ENTRY, "median_ms": 9.0}}
    assert a.merge(b) == ["X@1#1"]
    assert a.entries["ConvBNAct@1x8x8x3#00"]["median_ms"] == 0.5  # own entries win
    assert a.calibration is None  # fitted on fewer entries: must be refitted
    foreign = _table()
    foreign.environment = {**ENV, "threads": 2}
    foreign.entries = {"Y@1#2": dict(ENTRY)}
    with pytest.raises(UserError, match="threads: 1 vs 2"):
        a.merge(foreign)
    assert "Y@1#2" not in a.entries
    assert a.merge(foreign, allow_foreign=True) == ["Y@1#2"]
