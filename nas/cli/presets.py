"""`segnas presets [--json]`: the named presets (published models) and named spaces."""

from __future__ import annotations

from nas.cli.common import Parser
from nas.cli.output import emit_json
from nas.space.presets import PRESETS, SPACES


def main(argv: list[str]) -> int:
    """`segnas presets`: the named presets and spaces (JSON with --json)."""
    p = Parser(prog="segnas presets", description=__doc__)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.json:
        emit_json(
            {
                "presets": {n: a.to_dict() for n, a in PRESETS.items()},
                "spaces": {n: s.to_dict() for n, s in SPACES.items()},
            }
        )
        return 0
    print("presets:")
    for n, a in PRESETS.items():
        print(f"  {n:30s} {a.label()}, OS {a.output_stride}, {a.num_classes} classes")
    print("spaces:")
    for n, s in SPACES.items():
        print(f"  {n:30s} {s.size()} archs over {', '.join(s.searched())}")
    return 0
