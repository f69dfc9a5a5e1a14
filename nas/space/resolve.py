"""Where an `Arch` or a `Space` comes from: a preset name, an arch JSON file, or a dict.

One home for that resolution, shared by the trainer's `config.arch`, the CLI's `--preset` /
`--arch`, the search's space and baseline and the latency configs' space; each bad input is a
`UserError` naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from nas.errors import UserError
from nas.space.arch import Arch
from nas.space.presets import PRESETS, SPACES
from nas.space.space import Space


def load_arch_file(path: Path) -> Arch:
    """The `Arch` in the JSON file `path`; a missing, unreadable or invalid file is a
    `UserError` naming it."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(
            f"arch: file {str(path)!r} not found; allowed: a readable arch JSON file"
        ) from None
    except OSError as e:
        raise UserError(
            f"arch: cannot read {str(path)!r} ({e.strerror}); allowed: a readable arch JSON file"
        ) from None
    try:
        return Arch.from_json(text)
    except ValueError as e:
        raise UserError(f"{e} (in {path})") from None


def resolve_arch_spec(spec: Any, field: str = "config.arch") -> Arch:
    """`spec` as an Arch: a preset name, a path ending in .json, or a dict / ConfigDict of
    Arch fields."""
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    if isinstance(spec, str) and spec.endswith(".json"):
        return load_arch_file(Path(spec))
    if isinstance(spec, (ml_collections.ConfigDict, dict)):
        d = spec.to_dict() if isinstance(spec, ml_collections.ConfigDict) else dict(spec)
        try:
            return Arch.from_dict(d)
        except ValueError as e:
            raise UserError(f"{field}: {e}") from None
    raise UserError(
        f"{field}: got {spec!r}; allowed: a preset name "
        f"({', '.join(PRESETS)}), a .json file or a dict of Arch fields"
    )


def resolve_space_spec(spec: Any, field: str = "search.space") -> Space:
    """`spec` as a validated Space: a name of `SPACES` or a (nested) dict / ConfigDict of
    dimension -> values."""
    if isinstance(spec, ml_collections.ConfigDict):
        spec = spec.to_dict()
    if isinstance(spec, str):
        if spec not in SPACES:
            raise UserError(
                f"{field}: got {spec!r}; allowed: a dimension -> values dict "
                f"or one of {', '.join(SPACES)}"
            )
        return SPACES[spec]
    if not isinstance(spec, dict):
        raise UserError(
            f"{field}: got {type(spec).__name__}; allowed: a dimension -> "
            f"values dict or one of {', '.join(SPACES)}"
        )
    try:
        return Space.from_dict(spec)
    except (TypeError, ValueError) as e:
        msg = str(e)  # Space.validate already says "space.<dimension>: ..."
        prefix = field.rsplit("space", 1)[0]
        raise UserError(
            f"{prefix}{msg}" if msg.startswith("space.") else f"{field}: {msg}"
        ) from None
