"""Whole-model LiteRT latency with and without the Valid Interpolate Module (VIM), side by side.

    .venv/bin/python experiments/benchmarks/vim_latency.py            # the committed result
    .venv/bin/python experiments/benchmarks/vim_latency.py --quick    # smoke test, writes nothing

"PP-MobileSeg: Explore the Fast and Accurate Semantic Segmentation Model on Mobile Devices"
reports that VIM cut whole-model latency by 49.5 % at 150 classes: on a phone CPU the final
upsample + argmax of 150 class maps costs more than the network. For PP-MobileSeg-Base and
-Tiny (`nas.space.presets`) at 512 x 512, at 150 classes (ADE20K) and 19 (Cityscapes), three
programs of the same network (same random working variables, `nas.latency.blocks.random_variables`;
initial BatchNorm statistics would shrink the activations and let the converter fold branches):

- `full`: network + bilinear upsample of all C logits + argmax (`--output labels`);
- `vim`: network + VIM keeping K = 16 classes (`--output labels --vim 16`);
- `network`: the network up to its low-resolution logits only.

Each is converted to a builtin-only .tflite and timed on segnas's protocol
(`nas/latency/measure.py`: LiteRT + XNNPACK, 1 thread, the thread's CPU clock, single calls in
interleaved rounds after a warm-up, median), the six programs of one preset in one chunk, so
that load hits them alike. Per case: the medians, `speedup` = 1 - vim / full, `share` = (full -
network) / full (the final upsample + argmax's share of `full`), `vim_cost_ms` = vim - network,
and the labels' agreement of the two exported programs on one random image (a random model
predicts few classes, so this says little about VIM's accuracy: `vim_agreement.py` measures
that on a trained model). The issue's bar (`criteria`): at 150 classes speedup >= 30 % and
share >= 40 %; at 19 classes no gain (speedup < 10 %: VIM upsamples 16 of 19 maps and adds its
own ops). Figures go to experiments/benchmarks/results/vim_latency.json (`--name`,
`--no-save`); `--quick` times PP-MobileSeg-Tiny at 64 x 64 for 5 rounds and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import LoadMonitor, loadavg, write_result  # noqa: E402

PRESETS = ("pp_mobileseg_base", "pp_mobileseg_tiny")
CLASSES = (150, 19)
K = 16
PROGRAMS = ("full", "vim", "network")
MIN_SPEEDUP, MIN_SHARE, NO_GAIN = 0.30, 0.40, 0.10  # the bar (module docstring)


def programs(name: str, classes: int, resolution: tuple[int, int], k: int) -> dict[str, Any]:
    """`{program: (fn, [image])}` of preset `name` at `classes` and `resolution`: one set of
    random variables and one random image (seed 0) for all three."""
    from nas.latency.blocks import model_output, random_variables, vim_output
    from nas.space.build import build_model
    from nas.space.presets import preset

    arch = preset(name).replace(num_classes=classes, resolution=resolution)
    model = build_model(arch)
    rng = np.random.default_rng(0)
    variables = random_variables(arch, rng)
    image = rng.standard_normal((1, *resolution, 3)).astype(np.float32)
    outputs = {"full": "labels", "vim": vim_output(k)}
    fns = {p: (lambda x, o=o: model_output(model, variables, x, o)) for p, o in outputs.items()}
    fns["network"] = lambda x: model.apply(variables, x, train=False)[1]["low_logits"]
    return {p: (fns[p], [image]) for p in PROGRAMS}


def convert(progs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """LiteRT runners of the programs (builtin ops checked) and what the conversion shows."""
    from nas.export import tflite

    runners, info = {}, {}
    for p, (fn, inputs) in progs.items():
        tfl = tflite.convert(fn, inputs, ["image"], ["out"])
        bad = tflite.non_builtin_ops(tfl)
        if bad:
            raise SystemExit(f"{p}: non-builtin ops {bad}")
        runners[p] = tflite.Runner(tfl, threads=1)
        ops = tflite.op_counts(tfl)
        info[f"{p}_ops"] = sum(ops.values())
        if p == "vim":  # VIM's own ops (ARG_MAX: the low-resolution and the final argmax)
            keep = ("ARG_MAX", "ONE_HOT", "TOPK_V2", "GATHER", "GATHER_ND")
            info["vim_op_counts"] = {op: n for op, n in ops.items() if op in keep}
    full, vim = (runners[p](image=progs[p][1][0])["out"] for p in ("full", "vim"))
    info["agreement_random_model"] = float(np.mean(full == vim))
    return runners, info


def run_preset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Converts the preset's programs at every class count and times them in one chunk."""
    from nas.latency import measure

    timers, figures = {}, {}
    clock = measure.clock_name("litert-cpu", 1)
    start = time.time()
    for c in args.classes:
        runners, figures[f"c{c}"] = convert(programs(name, c, tuple(args.resolution), args.k))
        for p, r in runners.items():
            timers[(c, p)] = measure.call_timer(r.interpreter.invoke, clock)
    convert_s = time.time() - start
    samples = measure.measure(
        timers, rounds=args.rounds, warmup=args.warmup, window_s=args.window_s
    )
    for c in args.classes:
        f = figures[f"c{c}"]
        ms = {p: statistics.median(samples[(c, p)]) for p in PROGRAMS}
        f.update({f"{p}_ms": round(ms[p], 4) for p in PROGRAMS})
        f.update(
            {f"{p}_p90_ms": round(float(np.percentile(samples[(c, p)], 90)), 4) for p in PROGRAMS}
        )
        f["speedup"] = round(1 - ms["vim"] / ms["full"], 4)
        f["share"] = round((ms["full"] - ms["network"]) / ms["full"], 4)
        f["vim_cost_ms"] = round(ms["vim"] - ms["network"], 4)
    return {"convert_s": round(convert_s, 1), "clock": clock, **figures}


def criteria(figures: dict[str, Any]) -> dict[str, bool]:
    """The issue's bar per preset: 150 classes faster and upsample-bound, 19 classes no gain."""
    out = {}
    for name, f in figures.items():
        if "c150" in f:
            out[f"{name}.c150_speedup_ge_30pct"] = f["c150"]["speedup"] >= MIN_SPEEDUP
            out[f"{name}.c150_share_ge_40pct"] = f["c150"]["share"] >= MIN_SHARE
        if "c19" in f:
            out[f"{name}.c19_no_gain"] = f["c19"]["speedup"] < NO_GAIN
    return out


def main(argv: list[str]) -> int:
    """Times every preset, prints its figures and saves them in one result file."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", choices=PRESETS, default=list(PRESETS))
    p.add_argument("--classes", nargs="+", type=int, default=list(CLASSES))
    p.add_argument("--resolution", nargs=2, type=int, default=[512, 512], metavar=("H", "W"))
    p.add_argument("--k", type=int, default=K, help=f"classes VIM keeps (default {K})")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default: protocol's)")
    p.add_argument("--quick", action="store_true", help="tiny preset, 64 x 64, 5 rounds, no file")
    p.add_argument("--name", default="vim_latency", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)
    from nas.latency import measure

    if args.quick:
        args.presets, args.resolution, args.no_save = ["pp_mobileseg_tiny"], [64, 64], True
    args.rounds = args.rounds or (5 if args.quick else measure.ROUNDS)
    args.warmup = 1 if args.quick else measure.WARMUP
    args.window_s = 0.0 if args.quick else measure.WINDOW_S
    load_before = loadavg()
    figures: dict[str, Any] = {}
    with LoadMonitor(interval_s=5.0) as load:
        for name in args.presets:
            figures[name] = f = run_preset(name, args)
            for c in args.classes:
                g = f[f"c{c}"]
                print(
                    f"{name} C={c}: full {g['full_ms']:.2f} ms, vim {g['vim_ms']:.2f} ms, "
                    f"network {g['network_ms']:.2f} ms; speedup {100 * g['speedup']:.1f} %, "
                    f"share {100 * g['share']:.1f} %"
                )
    figures["criteria"] = criteria({n: figures[n] for n in args.presets})
    print("criteria:", figures["criteria"])
    if not args.no_save:
        params = {
            "argv": argv,
            "resolution": args.resolution,
            "k": args.k,
            "classes": args.classes,
            "threads": 1,
            "runtime": "ai-edge-litert Interpreter + XNNPACK",
            "rounds": args.rounds,
            "warmup": args.warmup,
            "window_s": args.window_s,
        }
        path = write_result(
            args.name, figures, params=params, load_before=load_before, load_during=load.summary()
        )
        print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
