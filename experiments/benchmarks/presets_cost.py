"""Params, MACs and fp16 size of every named preset (the README's Presets table).

    .venv/bin/python experiments/benchmarks/presets_cost.py [--presets NAME ...] [--no-save]

Counts each preset with `nas.cost.cost` (from the model's parameter tree and traced program;
no timing, so the figures do not depend on the machine) and writes them to
experiments/benchmarks/results/presets_cost.json as `figures.<preset>.{params, macs, macs_m,
fp16_mb}` (`--name` for another name, `--no-save` for none). Variants the README compares
with a published count are added as `<preset>@<change>` (e.g. LR-ASPP with torchvision's 21
classes).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # runs from a checkout without installing segnas too

from experiments.benchmarks.results import loadavg, write_result  # noqa: E402
from nas.cost import cost  # noqa: E402
from nas.space.arch import Arch  # noqa: E402
from nas.space.presets import PRESETS  # noqa: E402

# name -> (preset, {path: value}): variants whose counts the README sets beside a published one.
VARIANTS: dict[str, tuple[str, dict]] = {
    "lraspp_mobilenet_v3_large@21_classes": ("lraspp_mobilenet_v3_large", {"num_classes": 21}),
}


def archs(names: list[str]) -> dict[str, Arch]:
    """The presets `names` and the variants of those presets, by result key."""
    out = {name: PRESETS[name] for name in names}
    for key, (base, changes) in VARIANTS.items():
        if base in names:
            out[key] = PRESETS[base].with_values(changes)
    return out


def main(argv: list[str]) -> int:
    """Counts the presets, prints one line each and saves the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    p.add_argument("--name", default="presets_cost", help="result file name (no .json)")
    p.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = p.parse_args(argv)
    load_before = loadavg()
    figures = {}
    for name, arch in archs(args.presets).items():
        c = cost(arch)
        figures[name] = {
            "params": c["params"],
            "macs": c["macs"],
            "macs_m": c["macs"] / 1e6,
            "fp16_mb": c["bytes_fp16"] / 1e6,
            "resolution": c["resolution"],
            "num_classes": c["num_classes"],
        }
        print(f"{name:40s} {c['params']:>12,} params {c['macs'] / 1e6:>12,.2f} M MACs")
    if not args.no_save:
        path = write_result(args.name, figures, params={"argv": argv}, load_before=load_before)
        print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
