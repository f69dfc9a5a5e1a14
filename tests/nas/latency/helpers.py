"""Helpers shared by the latency tests: a tiny arch and synthetic tables (no measuring)."""

from __future__ import annotations

from nas.latency.predictor import signatures
from nas.latency.table import LatencyTable, environment
from nas.space.arch import Arch

# The smallest model the space allows (every block a few microseconds): tracing ~1 s.
TINY = Arch.from_dict(dict(encoder="mobilenet_v3_small", decoder="bilinear", resolution=(32, 32)))


def here_env() -> dict:
    return environment("litert-cpu", 1, "thread-cpu")


def synthetic_table(arch: Arch = TINY, skip: int = 0, path=None) -> LatencyTable:
    """A table whose i-th distinct signature of `arch` has median (i + 1) * 0.01 ms, the
    first `skip` signatures left out."""
    keys = list(dict.fromkeys(signatures(arch)))
    entries = {
        k: {
            "median_ms": round((i + 1) * 0.01, 6),
            "p10_ms": 0.0,
            "p90_ms": 0.0,
            "mad_ms": 0.0,
            "n": 5,
        }
        for i, k in enumerate(keys)
        if i >= skip
    }
    return LatencyTable(here_env(), entries, path=path)


def tiny_keys() -> list[str]:
    return list(signatures(TINY))
