"""`segnas data store ROOT --name NAME --out DIR [--video] [--num-classes N]`.

Stores a user's own folder of images + PNG masks (or video frames + sparse masks; the layout
is in `data/own.py`) as a tfds dataset under DIR, which a config then names with
`data.name=NAME data.data_dir=DIR`.
"""

from __future__ import annotations

from pathlib import Path

from nas.cli.common import Parser


def _parser() -> Parser:
    p = Parser(prog="segnas data", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("store", help="store a folder of images + masks as a tfds dataset")
    s.add_argument("root", type=Path, help="folder of split folders (see data/own.py)")
    s.add_argument("--name", required=True, help="dataset name (data.name in configs)")
    s.add_argument("--out", required=True, type=Path, help="tfds data_dir to write into")
    s.add_argument("--video", action="store_true", help="ROOT holds videos, not images")
    s.add_argument("--num-classes", type=int, help="default: largest mask value + 1")
    return p


def main(argv: list[str]) -> int:
    """`segnas data store`: 0 once the dataset is stored."""
    args = _parser().parse_args(argv)
    from data.own import store_folder  # TensorFlow loads only once the arguments are good

    path = store_folder(
        args.root, args.name, args.out, video=args.video, num_classes=args.num_classes
    )
    print(f"stored {path}; use data.name={args.name!r} data.data_dir={str(args.out)!r}")
    return 0
