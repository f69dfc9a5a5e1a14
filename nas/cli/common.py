"""Helpers shared by subcommands: argument parsing and choosing an arch by preset or JSON file
(`--json` output is in `nas.cli.output`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.errors import UserError
from nas.space.arch import Arch
from nas.space.presets import PRESETS, preset
from nas.space.resolve import load_arch_file


class Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as `UserError` (one line, exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Raises the message as a UserError (one line, exit code 2)."""
        raise UserError(message)


def add_arch_args(p: argparse.ArgumentParser, overrides: bool = True) -> None:
    """Adds --preset | --arch (one required) and, with `overrides`, --num-classes and
    --resolution."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--preset", help=f"one of: {', '.join(PRESETS)}")
    g.add_argument("--arch", type=Path, help="an arch JSON file (Arch fields)")
    if overrides:
        p.add_argument("--num-classes", type=int, help="override the arch's num_classes")
        p.add_argument(
            "--resolution",
            type=int,
            nargs=2,
            metavar=("H", "W"),
            help="override the arch's input resolution",
        )


def arch_from_args(args: argparse.Namespace) -> Arch:
    """The arch that --preset / --arch name, with --num-classes / --resolution applied."""
    arch = preset(args.preset) if args.preset else load_arch_file(args.arch)
    changes = {}
    if getattr(args, "num_classes", None) is not None:
        changes["num_classes"] = args.num_classes
    if getattr(args, "resolution", None) is not None:
        changes["resolution"] = tuple(args.resolution)
    return arch.replace(**changes) if changes else arch
