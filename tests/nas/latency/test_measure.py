"""Timing: the interleaving protocol, statistics, targets and clocks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nas.errors import UserError
from nas.latency import measure


def test_summarize_pins_the_statistics():
    s = measure.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s == {"median_ms": 3.0, "p10_ms": 1.4, "p90_ms": 61.6, "mad_ms": 1.0, "n": 5}
    with pytest.raises(ValueError, match="samples: got an empty list"):
        measure.summarize([])


def test_measure_interleaves_single_calls():
    calls: list[str] = []

    def fake(name: str, seconds: float):
        def timer() -> float:
            calls.append(name)
            return seconds

        return timer

    timers = {"tiny": fake("tiny", 1e-5), "big": fake("big", 5e-3), "mid": fake("mid", 1e-3)}
    samples = measure.measure(timers, rounds=4, warmup=2, seed=0)
    assert samples == {"tiny": [0.01] * 4, "big": [5.0] * 4, "mid": [1.0] * 4}
    assert calls[:6] == ["tiny"] * 2 + ["big"] * 2 + ["mid"] * 2  # warm-up first
    timed = calls[6:]
    assert len(timed) == 12
    # every round takes one sample of every program, in a shuffled order
    rounds = [timed[3 * r : 3 * r + 3] for r in range(4)]
    assert all(sorted(r) == ["big", "mid", "tiny"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_short_chunks_take_rounds_until_the_window_is_filled():
    timers = {"a": lambda: 1e-3, "b": lambda: 2e-3}  # a round: 3 ms of timed calls
    # 0.1 s: 34 rounds (33 rounds are 99 ms); never fewer than `rounds`
    assert len(measure.measure(timers, rounds=5, warmup=0, window_s=0.1)["a"]) == 34
    assert len(measure.measure(timers, rounds=50, warmup=0, window_s=0.1)["b"]) == 50
    assert len(measure.measure(timers, rounds=5, warmup=0)["a"]) == 5  # no window
    # a program of no measurable time cannot fill a window: capped at MAX_ROUNDS
    zero = measure.measure({"z": lambda: 0.0}, rounds=1, warmup=0, window_s=1.0)
    assert len(zero["z"]) == measure.MAX_ROUNDS == 2000
    assert measure.measure({}, rounds=3, warmup=0, window_s=1.0) == {}


def test_clock_overhead_is_small_and_positive():
    import time

    assert 0 < measure.clock_overhead(time.perf_counter, n=100) < 1e-4


def test_measure_rejects_bad_settings():
    with pytest.raises(UserError, match="rounds=0, warmup=5, window_s=0.0; allowed: rounds >= 1"):
        measure.measure({}, rounds=0)
    with pytest.raises(UserError, match="window_s=-1; allowed: .* window_s >= 0"):
        measure.measure({}, rounds=1, window_s=-1)
    with pytest.raises(UserError, match="warmup=-1"):
        measure.measure({}, rounds=1, warmup=-1)


def test_targets_and_clocks():
    with pytest.raises(UserError, match="target: got 'tpu'; allowed: litert-cpu, jax-cpu, jax-gpu"):
        measure.check_target("tpu", 1)
    with pytest.raises(UserError, match="threads: got 0; allowed: an integer >= 1"):
        measure.check_target("litert-cpu", 0)
    measure.check_target("litert-cpu", 2)
    assert measure.clock_name("litert-cpu", 1) == "thread-cpu"
    assert measure.clock_name("jax-cpu", 1) == "process-cpu"
    assert measure.clock_name("litert-cpu", 2) == "wall"
    assert measure.clock_name("jax-gpu", 1) == "wall"
    # intra_op_parallelism_threads is not an XLA flag: never emitted
    assert measure.jax_cpu_flags(1) == "--xla_cpu_multi_thread_eigen=false"
    assert measure.jax_cpu_flags(4) == ""


def test_jax_gpu_without_a_gpu_is_a_clear_error():
    import jax

    if jax.default_backend() == "gpu":
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="target: got 'jax-gpu' but JAX sees no GPU"):
        measure.check_target("jax-gpu", 1)


@pytest.mark.parametrize("target", ["litert-cpu", "jax-cpu"])
def test_real_timers(target):
    w = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    timer = measure.make_timer(target, lambda x: x @ w, [np.ones((8, 64), np.float32)])
    samples = measure.measure({"mm": timer}, rounds=3, warmup=1)
    assert len(samples["mm"]) == 3 and all(0 < s < 50 for s in samples["mm"])


def test_prepare_process_holds_jax_cpu_to_its_threads(monkeypatch):
    cores: list[list[int]] = []
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, c: cores.append(list(c)))
    measure.prepare_process("jax-cpu", 2)
    assert os.environ["XLA_FLAGS"] == "" and cores == [[0, 1]]
    monkeypatch.delenv("XLA_FLAGS")
    measure.prepare_process("jax-cpu", 1)  # one thread: Eigen's pool off, no pinning needed
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false" and len(cores) == 1
    measure.prepare_process("jax-cpu", 8)  # more threads than cores: left as it is
    measure.prepare_process("litert-cpu", 2)  # LiteRT takes its thread count per interpreter
    assert len(cores) == 1
