"""The one way every `segnas` command reads its config flags from argv.

Accepted forms, for every command that takes a config: `--config FILE.py[:ARG]`,
`--config=FILE.py[:ARG]`, and overrides `--config.a.b=VALUE` or `--config.a.b VALUE`.
`split_config_args` takes them out of argv (the rest goes to the command's argparse);
`nas.config.load_config` reads the file and applies the overrides.
"""

from __future__ import annotations

from ml_collections import ConfigDict

from nas.config import load_config
from nas.errors import UserError


def split_config_args(argv: list[str]) -> tuple[str | None, list[str], list[str]]:
    """(the `--config` value or None, the overrides as `--config.a.b=v`, the other args)."""
    spec: str | None = None
    overrides: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" or a.startswith("--config=") or a.startswith("--config."):
            name, eq, value = a.partition("=")
            if not eq:  # "--config VALUE" / "--config.a.b VALUE"
                if i + 1 >= len(argv):
                    raise UserError(f"{name}: missing value; allowed: {name} VALUE or {name}=VALUE")
                value, i = argv[i + 1], i + 1
            if name == "--config":
                if spec is not None:
                    raise UserError(
                        f"--config: given twice ({spec!r}, {value!r}); allowed: one config file"
                    )
                spec = value
            else:
                overrides.append(f"{name}={value}")
        else:
            rest.append(a)
        i += 1
    return spec, overrides, rest


def config_from_argv(argv: list[str]) -> tuple[ConfigDict, list[str]]:
    """The config that `argv` names (required), and the arguments that are not config flags."""
    spec, overrides, rest = split_config_args(argv)
    if spec is None:
        raise UserError("--config: missing; allowed: --config experiments/NAME.py[:ARG]")
    return load_config(spec, overrides), rest
