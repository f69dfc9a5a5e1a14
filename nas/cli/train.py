"""`segnas train --config experiments/NAME.py[:ARG] --workdir DIR [--config.a.b=v ...]`.

The config file's `get_config(ARG)` gives an `ml_collections.ConfigDict`; any field can be
overridden on the command line (`--config.train.steps=100`); `nas.cli.config` reads these
flags as for every command, and `main` can be called many times in one process (tests).
Rerunning the same command on the same workdir resumes from its last checkpoint. Exit code:
0 complete, 1 diverged or failed, 2 bad input (from `nas.cli.main`).
"""

from __future__ import annotations

import sys

import ml_collections

from nas.cli.config import config_from_argv
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


def _parse(argv: list[str]) -> tuple[ml_collections.ConfigDict, str]:
    """(config, workdir) from argv; a mistake is a UserError naming the flag."""
    config, rest = config_from_argv(argv)
    workdir = None
    it = iter(rest)
    for a in it:
        name, eq, value = a.partition("=")
        if name == "--workdir" and workdir is None:
            workdir = value if eq else next(it, None)
            if not workdir:
                raise UserError("--workdir: missing value; allowed: --workdir DIR")
        else:
            raise UserError(
                f"arguments: got {a!r}; allowed: --config, --config.FIELD=VALUE "
                "and --workdir (see `segnas train --help`)"
            )
    if workdir is None:
        raise UserError("--workdir: missing; allowed: see `segnas train --help`")
    return config, workdir


def main(argv: list[str]) -> int:
    """`segnas train`: exit code 0 complete, 1 diverged or failed."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    config, workdir = _parse(argv)
    from nas.train.loop import train_and_evaluate  # jax loads only once the flags are good

    result = train_and_evaluate(config, workdir)
    miou = result.metrics.get("val/miou")
    print(
        f"segnas train: {result.status} at step {result.step}"
        + (f", val/miou {miou:.4f}" if miou is not None else "")
        + f", {result.wall_time_s:.1f} s; workdir {workdir}"
        + (f"\n{result.message}" if result.message else ""),
        file=sys.stdout if result.status == "complete" else sys.stderr,
    )
    return 0 if result.status == "complete" else 1
