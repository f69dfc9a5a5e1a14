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

from absl import flags
from ml_collections import config_flags

from nas.errors import UserError

USAGE = """usage: segnas train --config experiments/NAME.py[:ARG] --workdir DIR [--config.FIELD=VALUE ...]

Train one architecture as the config says, in DIR (resumed from DIR/checkpoints when present).
Metrics go to DIR/metrics.jsonl, the console and W&B (offline unless --config.wandb.mode=online);
the outcome to DIR/result.json.

  --config FILE[:ARG]     an experiments/*.py file with get_config(arg); e.g. experiments/toy_train.py:smoke
  --workdir DIR           the run's folder
  --config.a.b=VALUE      override one config field, e.g. --config.train.steps=100"""


def _parse(argv: list[str]) -> flags.FlagValues:
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "experiment config file[:arg]",
                                    flag_values=fv, lock_config=True)
    flags.DEFINE_string("workdir", None, "the run's folder", flag_values=fv)
    try:
        rest = fv(["segnas train", *argv])
    except flags.Error as e:
        raise UserError(str(e).splitlines()[0]) from None
    if len(rest) > 1:
        raise UserError(f"arguments: got {rest[1:]!r}; allowed: only --flags")
    for name in ("config", "workdir"):
        if fv[name].value is None:
            raise UserError(f"--{name}: missing; allowed: see `segnas train --help`")
    return fv


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    fv = _parse(argv)
    from nas.train import train_and_evaluate  # jax loads only once the flags are good

    result = train_and_evaluate(fv.config, fv.workdir)
    miou = result.metrics.get("val/miou")
    print(f"segnas train: {result.status} at step {result.step}"
          + (f", val/miou {miou:.4f}" if miou is not None else "")
          + f", {result.wall_time_s:.1f} s; workdir {fv.workdir}"
          + (f"\n{result.message}" if result.message else ""),
          file=sys.stdout if result.status == "complete" else sys.stderr)
    return 0 if result.status == "complete" else 1
