"""`segnas latency ...`: build, predict from, validate, merge, export and import latency tables.

    segnas latency build    --target litert-cpu [--threads 1] [--out T]
                            (--config experiments/latency_cpu.py[:ARG] | --arch A.json ...)
    segnas latency predict  (--arch A.json | --preset NAME) [--table T] [--blocks] [--json]
    segnas latency validate --target litert-cpu --n 100 [--repeat 25] [--table T] [--json]
        [--plot out.png]
    segnas latency merge    A.json B.json --out C.json [--allow-foreign]
    segnas latency export-bench (--config C | --arch A.json ...) --out DIR
    segnas latency import   --manifest DIR/manifest.json --results FILE --device NAME --out T

Tables default to `latency_tables/<target>_t<threads>.json`. Every mistake in what was asked
(a missing or corrupt file, a table from another machine, an arch whose blocks were never
measured) is a `UserError`: one line, exit code 2, and no file half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nas.cli.common import Parser
from nas.cli.config import split_config_args
from nas.cli.output import emit_json
from nas.config import load_config
from nas.errors import UserError
from nas.latency import measure
from nas.latency.build import space_of_config
from nas.latency.table import default_path, environment, load_table
from nas.space.resolve import load_arch_file


def _config_section(cfg: Any, name: str) -> dict[str, Any]:
    value = cfg.get(name, None)
    return dict(value.to_dict() if hasattr(value, "to_dict") else (value or {}))


def _archs(args: argparse.Namespace) -> tuple[list, Any, dict[str, Any], str]:
    """(archs, space or None, config settings, output) from --config or --arch files."""
    if args.arch:
        return [load_arch_file(p) for p in args.arch], None, {}, "logits"
    cfg = load_config(args.config, args.overrides)
    space = space_of_config(cfg)
    settings = {
        "measure": _config_section(cfg, "measure"),
        "calibration": _config_section(cfg, "calibration"),
    }
    return list(space.grid()), space, settings, cfg.get("output", "logits")


def _add_source(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="experiments/NAME.py[:ARG] naming the space to measure")
    g.add_argument("--arch", type=Path, nargs="+", help="arch JSON file(s) to measure")


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="litert-cpu", help=f"one of {', '.join(measure.TARGETS)}")
    p.add_argument("--threads", type=int, default=1, help="threads of the runtime (default 1)")


def cmd_build(args: argparse.Namespace) -> int:
    """`latency build`: measures the missing block signatures into a table."""
    from nas.latency import build

    archs, space, cfg, output = _archs(args)
    out = args.out or default_path(args.target, args.threads)
    before = len(load_table(out).entries) if out.exists() else 0
    print(f"{len(archs)} archs to cover; table {out} has {before} entries", file=sys.stderr)
    table = build.build_table(
        archs,
        out,
        args.target,
        args.threads,
        space,
        output,
        cfg.get("measure"),
        cfg.get("calibration"),
        args.allow_foreign,
    )
    fit = table.calibration or {}
    print(
        json.dumps(
            {
                "table": str(out),
                "entries": len(table.entries),
                "measured_now": len(table.entries) - before,
                "calibration": {k: fit.get(k) for k in ("n", "scale", "offset_ms", "heldout")},
            }
        )
    )
    return 0


def _table_arg(args: argparse.Namespace) -> Path:
    return args.table or default_path(args.target, args.threads)


def cmd_predict(args: argparse.Namespace) -> int:
    """`latency predict`: one arch's predicted latency (and its blocks with --blocks)."""
    from nas.cli.common import arch_from_args
    from nas.latency.blocks import decompose
    from nas.latency.predictor import block_sum, predict

    if args.table is None and args.target not in measure.TARGETS:
        # not a missing file: a target segnas measures on hosts has a default table path
        raise UserError(
            f"--target: got {args.target!r}; allowed: {', '.join(measure.TARGETS)}, or "
            "--table PATH for a device's table (segnas latency import)"
        )
    table = load_table(_table_arg(args))
    arch = arch_from_args(args)
    arch_file = args.arch or "ARCH.json"
    ms = predict(arch, table, arch_file=arch_file)
    result = {
        "arch_id": arch.id,
        "predicted_ms": round(ms, 4),
        "block_sum_ms": round(block_sum(arch, table, arch_file=arch_file), 4),
        "table": str(table.path),
        "target": table.target,
        "threads": table.threads,
        "device": table.environment.get("device"),
    }
    if args.blocks:
        result["blocks"] = [
            {"path": b.path, "key": b.key, "median_ms": table.entries[b.key]["median_ms"]}
            for b in decompose(arch, table.settings.get("output", "logits"))
            if b.key
        ]
    if args.json:
        emit_json(result)
        return 0
    for b in result.get("blocks", []):
        print(f"{b['median_ms']:9.4f} ms  {b['path']:22s} {b['key']}")
    print(
        f"{result['predicted_ms']:.3f} ms predicted for {arch.id} on {table.target} "
        f"({table.threads} thread(s), {result['device']}); block sum "
        f"{result['block_sum_ms']:.3f} ms"
    )
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """`latency validate`: predicted vs measured latency on held-out archs."""
    from nas.latency import build, validate

    table = load_table(_table_arg(args))
    if (table.target, table.threads) != (args.target, args.threads):
        raise UserError(
            f"table {table.path}: measured for {table.target} at {table.threads} "
            f"thread(s); allowed: a table for --target {args.target} --threads "
            f"{args.threads}"
        )
    env = environment(args.target, args.threads, measure.clock_name(args.target, args.threads))
    table.check_environment(env, "this machine", args.allow_foreign)
    if args.config:
        space = space_of_config(load_config(args.config, args.overrides))
    elif table.space:
        space = build.space_of(table.space)
    else:
        raise UserError(
            f"table {table.path}: records no space to sample from; allowed: pass "
            "--config experiments/NAME.py"
        )
    held = [p["id"] for p in (table.calibration or {}).get("points", [])]
    archs = validate.sample_archs(space, args.n, args.seed, exclude=held)
    settings = {
        **build.DEFAULT_SETTINGS,
        **{k: v for k, v in table.settings.items() if k in build.DEFAULT_SETTINGS},
    }
    result = validate.validate(
        table, archs, settings, table.settings.get("output", "logits"), repeat=args.repeat
    )
    if args.plot:
        validate.scatter_plot(result, args.plot)
    summary = {
        k: result[k]
        for k in ("n", "within_5pct", "within_10pct", "median_abs_pct_error", "max_abs_pct_error")
    }
    rep = result["repeatability"]
    heldout = (table.calibration or {}).get("heldout")
    if args.json:
        emit_json(
            {
                **summary,
                "repeatability": rep,
                "calibration_heldout": heldout,
                "table": str(table.path),
                "rows": result["rows"],
            }
        )
        return 0
    for k, v in summary.items():
        print(f"{k}: {v}")
    if rep["n"]:
        print(
            f"repeatability ({rep['n']} of them measured again later): "
            f"{100 * rep['within_5pct']:.0f} % within ±5 %, "
            f"{100 * rep['within_10pct']:.0f} % within ±10 %, median |difference| "
            f"{rep['median_abs_pct_error']:.1f} %, max {rep['max_abs_pct_error']:.1f} %"
        )
    if heldout:
        print(
            f"the table's calibration, out of fold ({heldout['n']} models): "
            f"{100 * heldout['within_10pct']:.0f} % within ±10 %, median |error| "
            f"{heldout['median_abs_pct_error']:.1f} %"
        )
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """`latency merge`: tables of one environment merged into one."""
    first, *rest = [load_table(p) for p in args.tables]
    for other in rest:
        added = first.merge(other, args.allow_foreign)
        print(f"{other.path}: {len(added)} new entries", file=sys.stderr)
    first.save(args.out)
    print(json.dumps({"table": str(args.out), "entries": len(first.entries)}))
    return 0


def cmd_export_bench(args: argparse.Namespace) -> int:
    """`latency export-bench`: micro-benchmark .tflite files and a manifest for a device."""
    import random

    from nas.latency import bench_export, build

    archs, space, cfg, output = _archs(args)
    cal = build.settings_of(cfg.get("calibration"), build.DEFAULT_CALIBRATION)
    calibration = random.Random(cal["seed"]).sample(archs, min(cal["n"], len(archs)))
    blocks = build.collect_blocks(archs, output)
    out = bench_export.export_bench(
        blocks, calibration, args.out, args.threads, output, space.to_dict() if space else None
    )
    print(json.dumps({"dir": str(out), "blocks": len(blocks), "models": len(calibration)}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """`latency import`: a device's benchmark_model output read into a table."""
    from nas.latency import bench_export

    manifest = bench_export.load_manifest(args.manifest)
    try:
        text = Path(args.results).read_text(errors="replace")
    except OSError as e:
        raise UserError(
            f"results: cannot read {str(args.results)!r} ({e.strerror}); allowed: "
            "a text file of benchmark_model output"
        ) from None
    table, missing = bench_export.import_results(
        manifest, bench_export.parse_results(text), args.device, args.runtime
    )
    if Path(args.out).exists():  # add to an earlier import from the same device
        old = load_table(args.out)
        calibration = old.calibration
        old.merge(table, allow_foreign=args.allow_foreign)
        old.calibration = table.calibration or calibration
        table = old
    table.save(args.out)
    if missing:
        print(
            f"warning: {len(missing)} file(s) of the manifest had no result, e.g. {missing[0]}",
            file=sys.stderr,
        )
    print(
        json.dumps(
            {
                "table": str(args.out),
                "entries": len(table.entries),
                "missing": len(missing),
                "calibrated": table.calibration is not None,
            }
        )
    )
    return 0


def _parser() -> Parser:
    p = Parser(
        prog="segnas latency",
        description="Latency tables: per-block measurements and a calibrated predictor.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    b = sub.add_parser("build", help="measure every block signature of a space")
    _add_target(b)
    _add_source(b)
    b.add_argument("--out", type=Path, help="table to write or resume")
    b.add_argument(
        "--allow-foreign",
        action="store_true",
        help="add to a table measured in another environment",
    )
    pr = sub.add_parser("predict", help="predicted latency of one arch")
    _add_target(pr)
    g = pr.add_mutually_exclusive_group(required=True)
    g.add_argument("--arch", type=Path, help="an arch JSON file")
    g.add_argument("--preset", help="a preset name (segnas presets)")
    pr.add_argument("--table", type=Path, help="default: latency_tables/<target>_t<threads>.json")
    pr.add_argument("--blocks", action="store_true", help="also list every block")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    v = sub.add_parser("validate", help="predicted vs measured on N held-out archs")
    _add_target(v)
    v.add_argument("--n", type=int, default=100, help="number of archs (default 100)")
    v.add_argument("--table", type=Path)
    v.add_argument("--config", help="space to sample (default: the table's)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument(
        "--repeat",
        type=int,
        default=25,
        help="measure this many of the archs a second time, for the repeatability (default 25)",
    )
    v.add_argument("--json", action="store_true", help="print one JSON object with every arch")
    v.add_argument("--plot", type=Path, help="write a predicted-vs-measured scatter PNG")
    v.add_argument(
        "--allow-foreign",
        action="store_true",
        help="validate a table measured in another environment",
    )
    mg = sub.add_parser("merge", help="merge tables of one environment")
    mg.add_argument("tables", type=Path, nargs="+")
    mg.add_argument("--out", type=Path, required=True)
    mg.add_argument("--allow-foreign", action="store_true")
    e = sub.add_parser("export-bench", help="write micro-benchmark .tflite files for a device")
    _add_source(e)
    e.add_argument("--out", type=Path, required=True, help="a new directory")
    e.add_argument("--threads", type=int, default=1, help="--num_threads in run_all.sh")
    i = sub.add_parser("import", help="read benchmark_model output into a table")
    i.add_argument("--manifest", type=Path, required=True)
    i.add_argument("--results", type=Path, required=True)
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--device", default="unknown device", help="e.g. 'Pixel 7, big cores'")
    i.add_argument("--runtime", default="unknown", help="benchmark_model / LiteRT version")
    i.add_argument(
        "--allow-foreign", action="store_true", help="merge into a table of another device"
    )
    return p


COMMANDS = {
    "build": cmd_build,
    "predict": cmd_predict,
    "validate": cmd_validate,
    "merge": cmd_merge,
    "export-bench": cmd_export_bench,
    "import": cmd_import,
}


def main(argv: list[str]) -> int:
    """`segnas latency SUBCOMMAND ...`."""
    spec, overrides, rest = split_config_args(argv)
    # argparse sees --config again, for the subcommands' own rules (--config or --arch)
    args, unknown = _parser().parse_known_args(
        rest + ([f"--config={spec}"] if spec is not None else [])
    )
    if unknown:
        raise UserError(
            f"arguments: got {unknown[0]!r}; allowed: the options of `segnas latency "
            f"{args.command} --help` (and --config.FIELD=VALUE with --config)"
        )
    if overrides and spec is None:
        raise UserError(
            f"arguments: got {overrides[0]!r}; allowed: the options of `segnas "
            f"latency {args.command} --help` (and --config.FIELD=VALUE with --config)"
        )
    args.overrides = overrides
    if hasattr(args, "target"):
        measure.prepare_process(args.target, args.threads)
        if args.command in ("build", "validate"):
            measure.check_target(args.target, args.threads)
    return COMMANDS[args.command](args)
