"""Files that are never half-written: atomic text writes and JSON.

A leaf module: it imports nothing from segnas, so `data/` may use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _temp_beside(path: Path, data: str | bytes) -> str:
    """A temporary file beside `path` holding `data`, with ordinary file permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, data: str | bytes) -> None:
    """Writes `data` to `path` through a temporary file renamed into place, so a reader (or an
    interrupted run) sees the old file or the new one, never a torn one."""
    write_together({Path(path): data})


def write_together(files: dict[Path, str | bytes]) -> None:
    """Writes every file to a temporary file beside it, then renames them all; on any failure
    (Ctrl-C too) none of them is left, neither temporary nor renamed (a model never without
    its report)."""
    temps: dict[Path, str] = {}
    done: list[Path] = []
    try:
        for path, data in files.items():
            temps[path] = _temp_beside(path, data)
        for path, tmp in temps.items():
            os.replace(tmp, path)
            done.append(path)
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        for path in done:
            path.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """`obj` as indented, key-sorted JSON at `path`, written atomically."""
    atomic_write(Path(path), json.dumps(obj, indent=2, sort_keys=True) + "\n")
