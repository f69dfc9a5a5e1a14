"""The `segnas` command: one subcommand per module, imported only when used.

Each subcommand module exposes `main(argv: list[str]) -> int`. Importing lazily keeps
`segnas cost` free of TensorFlow / LiteRT start-up time. A `UserError` (and the ValueError of
an invalid Arch) becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from nas.cli.output import json_mode
from nas.errors import UserError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "presets": ("nas.cli.presets", "list the named presets and spaces"),
    "cost": ("nas.cli.cost", "params, MACs and bytes of a preset or an arch JSON"),
    "train": ("nas.cli.train", "train one architecture from an experiments/ config"),
    "export": ("nas.cli.export", "export a candidate to .tflite with a parity check"),
    "latency": ("nas.cli.latency", "build, predict from and validate latency tables"),
    "search": ("nas.cli.search", "run (or continue) an architecture search"),
    "pareto": ("nas.cli.pareto", "re-render the Pareto front of a search workdir"),
    "data": ("nas.cli.data", "store your own folder of images + masks as a dataset"),
    "table": ("nas.cli.table", "a paper's table beside segnas's own figures"),
}


def _usage() -> str:
    rows = "\n".join(f"  {name:10s} {help_}" for name, (_, help_) in COMMANDS.items())
    return (
        f"usage: segnas COMMAND [args]\n\ncommands:\n{rows}\n\n`segnas COMMAND --help` for details."
    )


def main(argv: list[str] | None = None) -> int:
    """The `segnas` entry point: dispatches to the subcommand; a UserError exits 2."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(
            f"segnas: error: command: got {name!r}; allowed: {', '.join(COMMANDS)}", file=sys.stderr
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        with json_mode("--json" in rest):
            return int(module.main(rest) or 0)
    except (UserError, ValueError) as e:
        print(f"segnas {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
