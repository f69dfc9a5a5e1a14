"""`segnas table --config FILE.py[:ARG] [--workdir DIR] [--out DIR] [--config.a.b=v ...]`:
a paper's table with segnas's figures beside the paper's values.

The config's `table` section (nas/tables.py) lists the rows (presets or arch dicts) and the
columns (structural, latency, accuracy, paper). `--workdir` is a finished (or running) sweep
whose trials.jsonl fills the accuracy columns. Prints the table as Markdown and writes
`table.md` and `table.csv` to `--out` (default: the --workdir when given, else the current
directory) and a W&B run holding the table (offline unless `--config.wandb.mode=online`;
`--config.wandb.mode=disabled` skips it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nas import tables
from nas.cli.common import Parser
from nas.cli.config import split_config_args
from nas.config import load_config
from nas.errors import UserError
from nas.io import atomic_write


def _parser() -> Parser:
    p = Parser(prog="segnas table", description=__doc__.split("\n\n")[0])
    # Listed for --help only: --config and --config.* are read by nas.cli.config.
    p.add_argument(
        "--config",
        metavar="FILE[:ARG]",
        help="experiment config with a `table` section, e.g. experiments/seed000/table1.py; "
        "override any field with --config.a.b=value",
    )
    p.add_argument("--workdir", type=Path, help="a sweep's folder: its trials.jsonl fills accuracy")
    p.add_argument(
        "--out",
        type=Path,
        help="where table.md and table.csv go (default: --workdir, else the current directory)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str]) -> int:
    """`segnas table`: computes, prints and writes one paper table."""
    spec, overrides, rest = split_config_args(argv)
    p = _parser()
    if any(a in ("-h", "--help") for a in rest):
        p.print_help()
        return 0
    args = p.parse_args(rest)
    if spec is None:
        raise UserError("--config: missing; allowed: --config experiments/NAME.py[:ARG]")
    if args.workdir is not None and not args.workdir.is_dir():
        raise UserError(
            f"--workdir: {str(args.workdir)!r} is not a directory; allowed: a search workdir "
            "(holding trials.jsonl), or leave it out"
        )
    config = load_config(spec, overrides)
    table = tables.parse_table(config.get("table"))
    out = args.out or args.workdir or Path.cwd()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"--out: cannot create {str(out)!r} ({e.strerror}); allowed: a writable folder"
        ) from None

    result = tables.compute(table, args.workdir, command=spec, progress=not args.quiet)
    text = tables.to_markdown(result)
    print(text, end="", flush=True)
    atomic_write(out / "table.md", text)
    atomic_write(out / "table.csv", tables.to_csv(result))
    run_dir = tables.log_wandb(result, out, config.get("wandb"), config=spec)
    print(f"\nwrote {out / 'table.md'}, {out / 'table.csv'}", file=sys.stderr)
    if run_dir:
        print(f"W&B run: {run_dir} (`wandb sync {run_dir}` to upload)", file=sys.stderr)
    return 0
