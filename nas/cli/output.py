"""`--json` output: stdout holds the JSON and nothing else (kept free of heavy imports, as
`nas.cli.main` uses it before any subcommand is loaded)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TextIO


def dump_json(obj: object) -> str:
    """`obj` as one line of key-sorted JSON (what every --json flag prints)."""
    return json.dumps(obj, indent=None, sort_keys=True)


_JSON_OUT: TextIO | None = None  # the real stdout while `json_mode` is on


@contextlib.contextmanager
def json_mode(enabled: bool) -> Iterator[None]:
    """With `--json`, stdout holds the JSON `emit_json` writes and nothing else: whatever else
    is printed meanwhile (a dataset generated on first use, a library's notice) goes to
    stderr, so `segnas ... --json | jq` works on a fresh machine too."""
    global _JSON_OUT
    if not enabled:
        yield
        return
    _JSON_OUT = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON_OUT = None


def emit_json(obj: object) -> None:
    """Prints `obj` as one line of JSON to stdout (the real one under `json_mode`)."""
    print(dump_json(obj), file=_JSON_OUT or sys.stdout, flush=True)
