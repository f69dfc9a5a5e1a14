"""Files that are never half-written: atomic text writes and JSON.

A leaf module: it imports nothing from segnas, so `data/` may use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file renamed into place, so a reader (or an
    interrupted run) sees the old file or the new one, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """`obj` as indented, key-sorted JSON at `path`, written atomically."""
    atomic_write(Path(path), json.dumps(obj, indent=2, sort_keys=True) + "\n")
