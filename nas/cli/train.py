"""`segnas train --config experiments/NAME.py[:ARG] --workdir DIR [--config.a.b=v ...]`.

The config file's `get_config(ARG)` gives an `ml_collections.ConfigDict`; any field can be
overridden on the command line (`--config.train.steps=100`), parsed by
`ml_collections.config_flags` over absl flags. A fresh `FlagValues` per call keeps `main`
callable many times in one process (tests, `nas.cli`). Rerunning the same command on the same
workdir resumes from its last checkpoint. Exit code: 0 complete, 1 diverged or failed, 2 bad
input (from `nas.cli`).
"""

from __future__ import annotations

import sys

import ml_collections
from absl import flags
from ml_collections import config_flags

from nas.errors import UserError

USAGE = """\
usage: segnas train --config experiments/NAME.py[:ARG] --workdir DIR [--config.FIELD=VALUE ...]

Train one architecture as the config says, in DIR (resumed from DIR/checkpoints when
present). Metrics go to DIR/metrics.jsonl, the console and W&B (offline unless
--config.wandb.mode=online); the outcome to DIR/result.json.

  --config FILE[:ARG]   an experiments/*.py file with get_config(arg),
                        e.g. experiments/toy_train.py:smoke
  --workdir DIR         the run's folder
  --config.a.b=VALUE    override one config field, e.g. --config.train.steps=100"""


def _last_line(e: BaseException) -> str:
    # absl and config_flags wrap the cause (a traceback, a list of attempted paths); its
    # most specific line comes last.
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def _parse(argv: list[str]) -> tuple[ml_collections.ConfigDict, str]:
    full = ["segnas train", *argv]
    fv = flags.FlagValues()
    # sys_argv: config_flags looks for `--config.x=y` overrides in it (default: sys.argv)
    config_flags.DEFINE_config_file("config", None, "experiment config file[:arg]",
                                    flag_values=fv, lock_config=True, sys_argv=full)
    flags.DEFINE_string("workdir", None, "the run's folder", flag_values=fv)
    try:
        rest = fv(full)
    except flags.Error as e:
        raise UserError(_last_line(e)) from None
    except (AttributeError, KeyError) as e:  # an override naming no field of the config
        field = _last_line(e).strip("\"'")
        raise UserError(f"--config override: unknown field {field}; allowed: a field of the "
                        "config, e.g. --config.train.steps=100") from None
    if len(rest) > 1:
        raise UserError(f"arguments: got {rest[1:]!r}; allowed: only --flags")
    for name in ("config", "workdir"):
        if fv[name].value is None:
            raise UserError(f"--{name}: missing; allowed: see `segnas train --help`")
    try:
        config = fv.config
        config.get("train")  # a config that failed to load raises on first use
    except (OSError, AttributeError) as e:
        raise UserError(f"--config: {_last_line(e)}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise UserError(f"--config: get_config returned {type(config).__name__}; allowed: "
                        "an ml_collections.ConfigDict")
    return config, fv.workdir


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    config, workdir = _parse(argv)
    from nas.train.loop import train_and_evaluate  # jax loads only once the flags are good

    result = train_and_evaluate(config, workdir)
    miou = result.metrics.get("val/miou")
    print(f"segnas train: {result.status} at step {result.step}"
          + (f", val/miou {miou:.4f}" if miou is not None else "")
          + f", {result.wall_time_s:.1f} s; workdir {workdir}"
          + (f"\n{result.message}" if result.message else ""),
          file=sys.stdout if result.status == "complete" else sys.stderr)
    return 0 if result.status == "complete" else 1
