"""`segnas cost (--preset NAME | --arch FILE.json) [--num-classes N] [--resolution H W]
[--json]`: params, MACs and bytes of one arch's deployed model, and params_train /
macs_train (auxiliary heads included) where they differ (always in --json)."""

from __future__ import annotations

from nas.cli.common import Parser, add_arch_args, arch_from_args
from nas.cli.output import emit_json
from nas.cost import cost


def format_table(rows: list[tuple[str, str]]) -> str:
    """Two aligned columns, one (name, value) row per line."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: list[str]) -> int:
    """`segnas cost`: prints the costs of one arch (a table, or JSON with --json)."""
    p = Parser(
        prog="segnas cost",
        description="Params, MACs and bytes of an architecture's deployed model "
        "(params: trainable incl. BN scale/bias; MACs: conv + dense; FLOPs = 2 x MACs); "
        "params_train / macs_train also count auxiliary heads only training reads.",
    )
    add_arch_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    arch = arch_from_args(args)
    c = cost(arch)
    if args.json:
        emit_json({**c, "arch": arch.to_dict()})
        return 0
    rows = [
        ("arch", f"{arch.label()} ({arch.id})"),
        ("resolution", "x".join(map(str, arch.resolution))),
        ("num_classes", str(arch.num_classes)),
        ("params", f"{c['params']:,}"),
        ("MACs", f"{c['macs']:,} ({c['macs'] / 1e9:.3f} G)"),
        ("FLOPs", f"{c['flops'] / 1e9:.3f} G"),
        (
            "bytes fp32 / fp16 / int8",
            " / ".join(
                f"{c[k] / 2**20:.2f} MiB" for k in ("bytes_fp32", "bytes_fp16", "bytes_int8")
            ),
        ),
    ]
    if (c["params_train"], c["macs_train"]) != (c["params"], c["macs"]):
        rows += [
            ("params_train", f"{c['params_train']:,} (with auxiliary heads)"),
            ("macs_train", f"{c['macs_train']:,} ({c['macs_train'] / 1e9:.3f} G)"),
        ]
    print(format_table(rows))
    return 0
