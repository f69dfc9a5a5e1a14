"""Timing programs on a target: segnas's one timing protocol, for tables, whole models, export
reports and search winners alike.

Targets: `litert-cpu` (the LiteRT interpreter with XNNPACK, as `nas.export.tflite.Runner` sets
it up, `threads` threads), `jax-cpu` and `jax-gpu` (the program jitted by XLA). A program is a pure
function and example inputs (a block's micro-model or a whole model, see `blocks.py`).

The protocol (`measure`):
- warm-up: every program runs `WARMUP` times before anything is timed;
- a sample is **one** call, timed alone (the clock's own cost, measured once, subtracted);
- interleaving: each of `ROUNDS` rounds takes one sample of every program, in a fresh random
  order, so a burst of load or a frequency change hits all programs alike rather than
  whichever happened to be measured during it, and so every call finds the machine as the
  other programs left it, as a block finds it inside a whole model;
- rounds continue past `ROUNDS` until the chunk has been timed for `WINDOW_S` ("Short chunks");
- the figure is the median (`summarize` adds 10th / 90th percentiles and the MAD);
- whole models are timed in chunks of 8 (`build.measure_models`), and a model timed on its
  own (an export's report, a search's winner) is timed among 7 other whole models
  (`context.py`): alone, call after call, a small model runs up to 2x faster than in a chunk;
  a winner's companions are its table's calibration models, which also set the chunk's scale
  (`context.py`, "Anchors").

Why single calls: timing k back-to-back calls of one small block keeps its weights and code
hot, which a block inside a model never is. On the development VM that made the block sums of
whole models 0.52-1.01x their measured latency (the same 162 models, block and model timed
back to back), against 0.89-1.11x with single interleaved calls; the per-kind fit
(`fit.py`) on 100 of them then put 95.7 % of the others within ±10 % instead of 99.4 %
(mean of 30 random splits).

The clock. On a machine shared with other jobs, wall-clock time of a call that runs longer
than a scheduler time slice includes the time the process waited for a core: a 20 ms model
measured under a load of 7 on 2 cores read 3x its block sum, while 0.3 ms blocks were barely
touched. Single-threaded CPU targets are therefore timed with the CPU time of the thread
(`litert-cpu`, XNNPACK runs in the calling thread at 1 thread) or of the process (`jax-cpu`,
XLA runs on its own thread), which equals the wall-clock latency on an idle machine and is
blind to waiting. Multi-threaded runs and `jax-gpu` are timed with the wall clock (CPU time
would add up the threads); the table records which clock was used, and every consumer (tables,
validation, exports, winners) gets its clock from `clock_name`.

Drift. A shared VM's speed wanders by a few percent over minutes (other tenants, frequency):
the same whole models timed twice minutes apart differed by a median of 1.4-3.1 %, some by
more than 10 %.
So every chunk also times one fixed *reference program* (`context.REFERENCE`, a 3 ms model)
(`measure_chunk`), and each figure is put on one scale, the reference's latency when the table
was first measured: figure x (reference then / reference in this chunk). On 32 models timed
in three passes this took the median difference between passes from 1.4 % to 0.5 % and the
90th percentile from 4.4 % to 1.4 %. Tables, calibration and validation are on that scale;
an export timed against a table (a search's winner) reports both its raw and its scaled figure.

Short chunks. A chunk of small programs is over in a fraction of a second at 40 rounds (eight
0.2-0.5 ms models and the reference: ~0.25 s of timed calls), and its median is then the
machine's state during that instant. So rounds go on until the timed calls add up to
`WINDOW_S` (1 s; at most `MAX_ROUNDS`); chunks of larger programs reach it within their 40
rounds and are unchanged. On the development VM, the 24 whole models of the quickstart's space
(0.2-0.5 ms) timed in 4 passes of 3 chunks, each pass another split into chunks: the spread of
a model's figure across passes went from a median of 5.5 % (max 13.8 %) at 40 rounds to 1.1 %
(max 3.5 %) at 160; the quickstart table's held-out error went from 58 % to 100 % of its 24
models within ±10 % (max 17.2 % to 6.9 %), for the same build time (105 s: converting the
programs dominates it).

Repeatability without the reference: the same 162 models timed twice, 7 minutes apart, on the
development VM (2 cores, quiet): median |difference| 3.1 %, 71 % within ±5 %, 98 % within
±10 %. `segnas latency validate` measures the repeatability (on the table's scale) beside
every validation (`--repeat`).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.errors import UserError

TARGETS = ("litert-cpu", "jax-cpu", "jax-gpu")
ROUNDS = 40  # samples per program (the median of 40 single calls)
WARMUP = 5  # untimed calls of every program first
# ... and rounds go on until the chunk's timed calls add up to this many seconds (see
# "Short chunks"), at most MAX_ROUNDS.
WINDOW_S = 1.0
MAX_ROUNDS = 2000
# Timer: runs the program once, returns the seconds it took.
Timer = Callable[[], float]


def check_target(target: str, threads: int) -> None:
    """UserError for an unknown target, a bad thread count or a GPU target without a GPU."""
    if target not in TARGETS:
        raise UserError(f"target: got {target!r}; allowed: {', '.join(TARGETS)}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UserError(f"threads: got {threads!r}; allowed: an integer >= 1")
    if target == "jax-gpu":
        import jax

        try:
            jax.devices("gpu")
        except RuntimeError:
            raise UserError(
                "target: got 'jax-gpu' but JAX sees no GPU on this machine "
                f"(backend: {jax.default_backend()}); allowed: jax-cpu, "
                "litert-cpu, or install a CUDA-enabled jax"
            ) from None


def clock_name(target: str, threads: int) -> str:
    """Which clock `make_timer` uses (see the module docstring); recorded in tables."""
    if threads == 1 and target == "litert-cpu":
        return "thread-cpu"
    if threads == 1 and target == "jax-cpu":
        return "process-cpu"
    return "wall"


def _clock(name: str) -> Callable[[], float]:
    return {
        "thread-cpu": time.thread_time,
        "process-cpu": time.process_time,
        "wall": time.perf_counter,
    }[name]


def jax_cpu_flags(threads: int) -> str:
    """XLA_FLAGS for XLA:CPU at `threads` threads; must be set before JAX starts. One thread:
    Eigen's intra-op pool off. More: no flag (XLA has none for a thread count); the pool is
    sized from the cores the process may run on, which `prepare_process` restricts."""
    return "--xla_cpu_multi_thread_eigen=false" if threads == 1 else ""


def clock_overhead(clock: Callable[[], float], n: int = 2000) -> float:
    """Median seconds between two back-to-back clock reads (subtracted from every sample)."""
    gaps = []
    for _ in range(n):
        start = clock()
        gaps.append(clock() - start)
    return statistics.median(gaps)


def call_timer(call: Callable[[], Any], clock: str) -> Timer:
    """The `Timer` of `call` (e.g. a LiteRT interpreter's `invoke`) on the clock named `clock`
    (`clock_name`), the clock's own cost subtracted."""
    read = _clock(clock)
    overhead = clock_overhead(read)

    def timer() -> float:
        start = read()
        call()
        return max(0.0, read() - start - overhead)

    return timer


def make_timer(
    target: str, fn: Callable[..., Any], inputs: Sequence[np.ndarray], threads: int = 1
) -> Timer:
    """Compiles `fn` for `target` (LiteRT conversion or jit) and returns its `Timer`."""
    clock = clock_name(target, threads)
    if target == "litert-cpu":
        from nas.export import tflite

        n_out = jax_outputs(fn, inputs)
        tfl = tflite.convert(
            fn, inputs, [f"x{i}" for i in range(len(inputs))], [f"y{i}" for i in range(n_out)]
        )
        runner = tflite.Runner(tfl, threads=threads)
        runner(**{f"x{i}": v for i, v in enumerate(inputs)})  # sets the inputs once
        return call_timer(runner.interpreter.invoke, clock)
    import jax

    device = jax.devices("gpu" if target == "jax-gpu" else "cpu")[0]
    args = [jax.device_put(x, device) for x in inputs]
    jitted = jax.jit(fn)
    jax.block_until_ready(jitted(*args))  # compile outside the clock
    return call_timer(lambda: jax.block_until_ready(jitted(*args)), clock)


def jax_outputs(fn: Callable[..., Any], inputs: Sequence[np.ndarray]) -> int:
    """How many outputs `fn` returns on `inputs` (1 unless a tuple / list), traced abstractly."""
    import jax

    out = jax.eval_shape(fn, *inputs)
    return len(out) if isinstance(out, (tuple, list)) else 1


def measure(
    timers: dict[str, Timer],
    rounds: int = ROUNDS,
    warmup: int = WARMUP,
    seed: int = 0,
    window_s: float = 0.0,
) -> dict[str, list[float]]:
    """Interleaved single-call samples (ms) of every timer: `rounds` rounds, and more until the
    timed calls add up to `window_s` seconds (at most `MAX_ROUNDS`); see the module docstring."""
    if rounds < 1 or warmup < 0 or window_s < 0:
        raise UserError(
            f"measure: got rounds={rounds}, warmup={warmup}, window_s={window_s}; allowed: "
            "rounds >= 1, warmup >= 0, window_s >= 0"
        )
    for timer in timers.values():
        for _ in range(warmup):
            timer()
    samples: dict[str, list[float]] = {k: [] for k in timers}
    rng = random.Random(seed)
    order = list(timers)
    timed_ms, done = 0.0, 0
    while timers and (done < rounds or (timed_ms < 1e3 * window_s and done < MAX_ROUNDS)):
        rng.shuffle(order)
        for key in order:
            samples[key].append(1e3 * timers[key]())
            timed_ms += samples[key][-1]
        done += 1
    return samples


REFERENCE_KEY = "\0reference"  # the reference program among a chunk's timers


def measure_chunk(
    timers: dict[str, Timer],
    rounds: int = ROUNDS,
    warmup: int = WARMUP,
    seed: int = 0,
    reference: Timer | None = None,
    window_s: float = 0.0,
) -> tuple[dict[str, list[float]], float | None]:
    """`measure` with the `reference` program interleaved among `timers` (see "Drift"): the
    timers' samples (ms) and the reference's median (None without a reference)."""
    chunk = dict(timers)
    if reference is not None:
        chunk[REFERENCE_KEY] = reference
    samples = measure(chunk, rounds, warmup, seed, window_s)
    ref = samples.pop(REFERENCE_KEY, None)
    return samples, (statistics.median(ref) if ref else None)


def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """median, p10, p90, MAD (ms) and n of a list of samples."""
    if not samples_ms:
        raise ValueError("samples: got an empty list; allowed: at least one sample")
    med = statistics.median(samples_ms)
    p10, p90 = np.percentile(samples_ms, [10, 90]).tolist()
    mad = statistics.median(abs(s - med) for s in samples_ms)
    return {
        "median_ms": round(med, 6),
        "p10_ms": round(p10, 6),
        "p90_ms": round(p90, 6),
        "mad_ms": round(mad, 6),
        "n": len(samples_ms),
    }


def prepare_process(target: str, threads: int) -> None:
    """Process-wide settings a target needs before JAX starts: for `jax-cpu`, the XLA flags
    (unless XLA_FLAGS is set) and, for several threads, the process held to `threads` of
    its cores (XLA:CPU sizes its thread pool from them)."""
    if target != "jax-cpu":
        return
    if "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = jax_cpu_flags(threads)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if 1 < threads < len(cores):
        os.sched_setaffinity(0, cores[:threads])
