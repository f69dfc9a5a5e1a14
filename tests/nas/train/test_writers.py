"""The W&B writer: an offline run inside the workdir whose `.wandb` file holds the metrics.

wandb 0.30 ships no Python reader for `.wandb` files (its core is in Go), so `records` reads
the framing here: a 7-byte header (":W&B", magic 0xBEE1, version), then LevelDB-log blocks of
32 KiB holding chunks (CRC32 4 bytes, length 2, type 1: 1 full, 2 first, 3 middle, 4 last)
whose payloads are `wandb_internal_pb2.Record` protobufs.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2

from nas.space.arch import Arch
from nas.train.loop import train_and_evaluate

BLOCK = 32 * 1024


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a .wandb file"
    pos, payload = 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding up to the block end
            pos += left
            continue
        payload += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            payload = b""
            yield record


def history(path: Path) -> list[dict]:
    rows = []
    for r in records(path):
        if r.WhichOneof("record_type") == "history":
            rows.append(
                {
                    (i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                    for i in r.history.item
                }
            )
    return rows


def test_offline_wandb_run_holds_the_metrics(smoke, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")  # the config, not the environment, decides
    smoke.wandb.update(mode="offline", project="segnas-test", group="g1", name="smoke")
    smoke.train.steps = 4
    result = train_and_evaluate(smoke, tmp_path)
    assert result.status == "complete", result.message

    run_dirs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    run_id = (tmp_path / "wandb_run_id").read_text()
    assert run_dirs[0].name.endswith(run_id)
    rows = history(run_dirs[0] / f"run-{run_id}.wandb")
    steps = [r["_step"] for r in rows if "train/loss" in r]
    assert steps == [1, 2, 3, 4]
    val = [r for r in rows if "val/miou" in r]
    assert len(val) == 1 and val[0]["_step"] == 4
    assert val[0]["val/miou"] == pytest.approx(result.metrics["val/miou"])

    run = next(
        r.run
        for r in records(run_dirs[0] / f"run-{run_id}.wandb")
        if r.WhichOneof("record_type") == "run"
    )
    assert (run.project, run.run_group, run.display_name) == ("segnas-test", "g1", "smoke")
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["arch_id"] == Arch.from_json((tmp_path / "arch.json").read_text()).id
    assert config["arch"]["encoder"]["name"] == "mobilenet_v3_small"
    assert config["train"]["steps"] == 4
