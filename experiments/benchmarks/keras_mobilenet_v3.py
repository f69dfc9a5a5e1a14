"""segnas's MobileNetV3-Large encoder vs `keras.applications.MobileNetV3Large`, as TFLite.

    .venv/bin/python experiments/benchmarks/keras_mobilenet_v3.py [--resolution 512] [--runs 50]

Both networks stop at the last 1x1 conv (960 channels at stride 32): segnas's encoder
(`models.encoders.mobilenet_v3.MobileNetV3`, features[32]) exported through `nas.tflite`
(JAX -> StableHLO -> litert-converter), and Keras' model (`include_top=False, weights=None,
include_preprocessing=False`) through TensorFlow's `TFLiteConverter.from_keras_model`. Both
run in the same LiteRT interpreter (XNNPACK, 1 thread by default); timed runs alternate
between the two models (ABBA order) so that machine noise hits both alike. Prints trainable
parameter counts, model sizes, op counts per model, latency (median, p10, p90) and the
latency ratio. Weights are random: latency does not depend on their values. The figures go
to experiments/benchmarks/results/keras_mobilenet_v3.json (`--name` for another name,
`--no-save` for none).

Measured (2-core x86-64, heavily shared): 2,971,952 trainable params each, the same 116 ops
(CONV_2D 47, DEPTHWISE_CONV_2D 15, HARD_SWISH 20, MUL 16, ADD 10, MEAN 8), op by op the same
fused activations and strides (only 1x1 convs differ: VALID vs SAME padding, a no-op);
at 512x512 the latency ratio segnas / keras was 1.03 and 0.95 in two runs (50 and 60
rounds), and 0.98 in the run of results/keras_mobilenet_v3.json (50 rounds, load average
3-4): equal within that machine's noise, as the identical graphs predict. The params
equal torchvision's 5,483,032 minus the classifier head (1,230,080 + 1,281,000).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402
from models.encoders.mobilenet_v3 import MobileNetV3  # noqa: E402
from nas.export import tflite  # noqa: E402


def segnas_encoder(resolution: int) -> tuple[bytes, int]:
    """(.tflite bytes, trainable params) of segnas's MobileNetV3-Large encoder."""
    model = MobileNetV3(variant="large", name="encoder")
    # Shapes do not depend on the input size: initialise small, export at `resolution`.
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    params = sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))
    x = np.zeros((1, resolution, resolution, 3), np.float32)
    tfl = tflite.convert(
        lambda image: model.apply(variables, image)[32], [x], ["image"], ["features"]
    )
    return tfl, params


def keras_model(resolution: int) -> tuple[bytes, int]:
    """(.tflite bytes, trainable params) of Keras' MobileNetV3Large without its top."""
    import keras
    import tensorflow as tf

    model = keras.applications.MobileNetV3Large(
        input_shape=(resolution, resolution, 3),
        include_top=False,
        weights=None,
        include_preprocessing=False,
    )
    params = sum(math.prod(w.shape) for w in model.trainable_weights)
    # Keras 3 exports a SavedModel on the way and prints its whole signature: keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()):
        tfl = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return tfl, params


def interleaved(
    models: dict[str, bytes], x: np.ndarray, runs: int, warmup: int, threads: int
) -> dict[str, list[float]]:
    """Milliseconds per invoke, alternating between the models run by run (the order flips
    every round, so neither model always runs right after the other)."""
    runners = {}
    for name, tfl in models.items():
        runner = tflite.Runner(tfl, threads=threads)
        input_name = next(iter(runner.inputs))
        runner(**{input_name: x})
        runners[name] = runner
    for _ in range(warmup):
        for runner in runners.values():
            runner.invoke_timed()
    times: dict[str, list[float]] = {name: [] for name in models}
    order = list(runners)
    for _ in range(runs):
        for name in order:
            times[name].append(1e3 * runners[name].invoke_timed())
        order.reverse()
    return times


def main(argv: list[str] | None = None) -> None:
    """Convert both encoders, time them interleaved, print the comparison table and save it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="keras_mobilenet_v3", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)

    load_before = loadavg()
    t = time.perf_counter()
    ours, ours_params = segnas_encoder(args.resolution)
    keras_tfl, keras_params = keras_model(args.resolution)
    print(f"converted both in {time.perf_counter() - t:.1f} s")
    models = {"segnas": ours, "keras": keras_tfl}
    x = np.random.default_rng(0).uniform(-1, 1, (1, args.resolution, args.resolution, 3))
    with LoadMonitor(interval_s=5.0) as load:
        times = interleaved(models, x.astype(np.float32), args.runs, args.warmup, args.threads)

    counts = {name: tflite.op_counts(tfl) for name, tfl in models.items()}
    print(
        f"\n{args.resolution}x{args.resolution}, LiteRT + XNNPACK, {args.threads} thread(s), "
        f"{args.runs} interleaved runs after {args.warmup} warm-ups\n"
    )
    print(f"{'':24s}{'segnas':>12s}{'keras':>12s}")
    print(f"{'trainable params':24s}{ours_params:>12,}{keras_params:>12,}")
    print(f"{'.tflite bytes':24s}{len(ours):>12,}{len(keras_tfl):>12,}")
    print(
        f"{'ops (total)':24s}{sum(counts['segnas'].values()):>12}"
        f"{sum(counts['keras'].values()):>12}"
    )
    for op in sorted(set(counts["segnas"]) | set(counts["keras"])):
        print(f"{'  ' + op:24s}{counts['segnas'].get(op, 0):>12}{counts['keras'].get(op, 0):>12}")
    stats = {n: (statistics.median(v), *np.percentile(v, [10, 90])) for n, v in times.items()}
    for i, label in enumerate(("median ms", "p10 ms", "p90 ms")):
        print(f"{label:24s}{stats['segnas'][i]:>12.2f}{stats['keras'][i]:>12.2f}")
    ratio = stats["segnas"][0] / stats["keras"][0]
    print(f"\nlatency ratio segnas / keras (medians): {ratio:.3f}")
    if args.no_save:
        return
    params = {"segnas": ours_params, "keras": keras_params}
    figures: dict = {
        name: {
            "params": params[name],
            "tflite_bytes": len(tfl),
            "ops_total": sum(counts[name].values()),
            "ops": counts[name],
            "median_ms": float(stats[name][0]),
            "p10_ms": float(stats[name][1]),
            "p90_ms": float(stats[name][2]),
        }
        for name, tfl in models.items()
    }
    figures["latency_ratio"] = ratio
    figures["same_ops"] = counts["segnas"] == counts["keras"]
    path = write_result(
        args.name, figures, params=vars(args), load_before=load_before, load_during=load.summary()
    )
    print(f"result: {path}")


if __name__ == "__main__":
    main()
