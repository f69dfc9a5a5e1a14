"""Loading an experiment config: `FILE.py[:ARG]` plus `--config.a.b=v` overrides.

A config is a Python file whose `get_config(arg=None)` returns an `ml_collections.ConfigDict`;
`ml_collections.config_flags` reads it and applies the overrides (on a fresh absl
`FlagValues` each call, so loading is repeatable in one process). Every command that takes a
config (`segnas train`, `search`, `latency`) and every benchmark script loads it here; the
CLI only splits its argv (`nas.cli.config`). Every failure is one `UserError` line naming
`--config` (a missing file, a file that does not load, a `get_config` that returns something
else) or the override (a field the config does not have, a value of the wrong type).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from absl import flags
from ml_collections import ConfigDict, config_flags

from nas.errors import UserError

ALLOWED = "an experiments/*.py file with get_config(arg), e.g. experiments/toy_train.py:smoke"


def _last_line(e: BaseException) -> str:
    # absl and config_flags wrap the cause (a traceback, a list of attempted paths); its most
    # specific line comes last.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def load_config(spec: str, overrides: Sequence[str] = ()) -> ConfigDict:
    """The ConfigDict of `spec` (`FILE.py[:ARG]`) with `overrides` (`--config.a.b=v` each)
    applied; the result is locked (assigning a field it does not have raises)."""
    path = spec.split(":", 1)[0]
    if not path:
        raise UserError(f"--config: missing; allowed: {ALLOWED}")
    if not Path(path).is_file():
        raise UserError(f"--config: file {path!r} not found; allowed: {ALLOWED}")
    for o in overrides:
        if not o.startswith("--config.") or "=" not in o:
            raise UserError(
                f"--config override: got {o!r}; allowed: --config.FIELD=VALUE, "
                "e.g. --config.train.steps=100"
            )
    argv = ["segnas", f"--config={spec}", *overrides]
    fv = flags.FlagValues()
    # sys_argv: config_flags reads the overrides from this list, not from the process's argv
    config_flags.DEFINE_config_file(
        "config",
        None,
        "experiment config file[:arg]",
        flag_values=fv,
        lock_config=True,
        sys_argv=argv,
    )
    try:
        fv(argv)
        config = fv.config
    except (AttributeError, KeyError) as e:  # an override naming no field of the config
        inner = e.args[0] if e.args and isinstance(e.args[0], KeyError) else e
        field = _last_line(inner).strip("\"'")
        raise UserError(
            f"--config override: unknown field {field}; allowed: a field of the "
            "config, e.g. --config.train.steps=100"
        ) from None
    except (flags.Error, ValueError, TypeError, OSError, SyntaxError, ImportError) as e:
        raise UserError(f"--config: {_last_line(e)}") from None
    if not isinstance(config, ConfigDict):
        raise UserError(
            f"--config: get_config returned {type(config).__name__}; allowed: an "
            "ml_collections.ConfigDict"
        )
    return config
