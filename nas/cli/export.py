"""`segnas export (--preset NAME | --arch FILE.json | --workdir RUN) --out PATH.tflite
[--quantize none|fp16|dynamic_int8|int8] [--output logits|labels|probs] [--vim K] [--json]
[--force] [--init-from FILE --init-format FMT]`.

A preset or arch file exports an untrained model (variables from a fixed seed) and checks
parity on toy_scenes images (its encoder from a pretrained file with `--init-from`,
`nas.weights`); `--workdir` exports a trained run's last checkpoint and checks
parity on the run's own eval split (int8 calibrates on its train split). The report is
written beside the model as PATH.json (and printed with `--json`).

`--output labels --vim K` ends the model in the Valid Interpolate Module (`models/vim.py`):
only the K most frequent classes of the low-resolution argmax are upsampled (16 is the bound
segnas's benchmarks and tables use; 0, the default, is off). It needs a decoder that returns
its low-resolution logits (`aam`) and 1 <= K <= the model's classes; the report's output is
`labels_vimK`, its parity also gives the agreement with the full upsample + argmax.
"""

from __future__ import annotations

from pathlib import Path

from nas.cli.common import Parser, arch_from_args
from nas.cli.output import emit_json
from nas.space.arch import Arch
from nas.space.presets import PRESETS

INIT_FLAGS = ("--init-from", "--init-format")


def _summary(r: dict) -> str:
    p = r["parity"]
    diff = "n/a (labels)" if p["max_abs_diff"] is None else f"{p['max_abs_diff']:.3g}"
    full = p.get("full_argmax_agreement")
    vim = "" if full is None else f"; VIM vs full upsample + argmax {100 * full:.3f} %"
    verdict = {True: "passed", False: "FAILED", None: "reported only (quantized)"}[p["passed"]]
    ops = ", ".join(f"{k} {v}" for k, v in r["ops"].items())
    rows = [
        ("written", f"{r['path']} (+ .json report)"),
        ("arch", f"{r['arch']['encoder']} + {r['arch']['decoder']} ({r['arch_id']})"),
        ("quantize / output", f"{r['quantize']} / {r['output']}"),
        ("size", f"{r['bytes']:,} bytes"),
        ("ops", ops),
        (
            "parity",
            f"{verdict}: max abs diff {diff}, argmax agreement "
            f"{100 * p['argmax_agreement']:.3f} % on {p['n_inputs']} inputs{vim}",
        ),
        (
            "latency",
            f"{r['latency_ms']:.2f} ms median (LiteRT XNNPACK, 1 thread, "
            f"{r['latency']['runs']} runs)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _check_vim(p: Parser, arch: Arch, k: int) -> None:
    """A one-line error (exit 2) unless `--vim k` fits `arch` (0: off always fits)."""
    from nas.latency.blocks import check_vim

    if k:
        try:
            check_vim(arch, k, "--vim", off=True)
        except ValueError as e:
            p.error(str(e))


def main(argv: list[str]) -> int:
    """`segnas export`: 0 when the model was written (parity passed or --force)."""
    from nas.export import policy as export
    from nas.latency.blocks import vim_output
    from nas.weights.apply import load, with_pretrained

    p = Parser(
        prog="segnas export",
        description="Export a candidate to a builtin-only .tflite "
        "with a parity check against JAX, optional quantization and a latency figure.",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--preset", help=f"one of: {', '.join(PRESETS)} (untrained, fixed seed)")
    g.add_argument("--arch", type=Path, help="an arch JSON file (untrained, fixed seed)")
    g.add_argument("--workdir", type=Path, help="a training run directory (last checkpoint)")
    p.add_argument("--num-classes", type=int, help="override num_classes (--preset/--arch)")
    p.add_argument(
        "--resolution",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="override the input resolution (--preset/--arch)",
    )
    p.add_argument("--out", type=Path, required=True, help="output PATH.tflite")
    p.add_argument("--quantize", default="none", help=f"one of: {', '.join(export.QUANTIZE)}")
    p.add_argument("--output", default="logits", help=f"one of: {', '.join(export.OUTPUTS)}")
    p.add_argument(
        "--vim",
        type=int,
        default=0,
        metavar="K",
        help="with --output labels: upsample only the K most frequent low-resolution classes "
        "(Valid Interpolate Module; e.g. 16; default 0: off)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument(
        "--force",
        action="store_true",
        help="write a float model even when it fails the parity check",
    )
    p.add_argument(
        "--calibration-images",
        type=int,
        default=export.CALIBRATION_IMAGES,
        help="int8: training images (not augmented) to calibrate on "
        f"(default {export.CALIBRATION_IMAGES}, at least {export.MIN_INPUTS})",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        help="with --preset/--arch: start the encoder from this pretrained weight file",
    )
    p.add_argument(
        "--init-format", help="the --init-from file's format: keras, timm, torchvision, paddle"
    )
    args = p.parse_args(argv)
    # Cheap checks first: a typo must not cost a model build.
    if args.quantize not in export.QUANTIZE:
        p.error(f"--quantize: got {args.quantize!r}; allowed: {', '.join(export.QUANTIZE)}")
    if args.output not in export.OUTPUTS:
        p.error(f"--output: got {args.output!r}; allowed: {', '.join(export.OUTPUTS)}")
    if args.vim and args.output != "labels":
        p.error(
            f"--vim: got {args.vim} with --output {args.output}; allowed: 0 (off), or K with "
            "--output labels"
        )
    if args.calibration_images < export.MIN_INPUTS:
        p.error(
            f"--calibration-images: got {args.calibration_images}; allowed: an integer "
            f">= {export.MIN_INPUTS}"
        )
    export.check_out_path(args.out)

    if (args.init_from is None) != (args.init_format is None):
        p.error("--init-from/--init-format: give both (a weight file and its format) or neither")
    data_cfg = None
    if args.workdir is not None:
        if args.num_classes is not None or args.resolution is not None:
            p.error(
                "--num-classes/--resolution: not allowed with --workdir (a trained run's "
                "arch is fixed)"
            )
        if args.init_from is not None:
            p.error("--init-from: not allowed with --workdir (a trained run has its weights)")
        arch, variables, data_cfg = export.load_run(args.workdir)
        _check_vim(p, arch, args.vim)
    else:
        arch = arch_from_args(args)
        _check_vim(p, arch, args.vim)  # before the (slow) init
        pretrained = None
        if args.init_from is not None:  # checked before the (slow) init
            pretrained = load(str(args.init_from), args.init_format, arch, INIT_FLAGS)
        variables = export.init_variables(arch)
        if pretrained is not None:
            variables = with_pretrained(variables, pretrained)
    report = export.export_candidate(
        arch,
        variables,
        args.out,
        quantize=args.quantize,
        output=vim_output(args.vim) if args.vim else args.output,
        force=args.force,
        data_cfg=data_cfg,
        calibration_images=args.calibration_images,
    )
    if args.json:
        emit_json(report)
    else:
        print(_summary(report))
    return 0
