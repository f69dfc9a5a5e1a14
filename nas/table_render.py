"""A computed paper table (`nas.tables.Result`) as text and records: Markdown, CSV, W&B.

`nas.tables` computes the cells; this module only writes them out, so that the table's logic
and its three output forms stay in files of their own size. `nas.tables` re-exports every
public name here (`to_markdown`, `csv_columns`, `to_csv`, `log_wandb`), which is how callers
use them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import UserError

if TYPE_CHECKING:  # nas.tables imports this module: the type is only named here
    from nas.tables import Result


def to_markdown(result: Result) -> str:
    """The table as Markdown: title, the table (paper value beside segnas's), the notes."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [f"## {result.spec.title}", "", line(result.header)]
    out.append("|" + "---|" * len(result.header))
    out += [line(c) for c in result.cells]
    out += [""] + [f"- {n}" for n in result.notes]
    return "\n".join(out) + "\n"


def csv_columns(result: Result) -> list[str]:
    """The CSV / W&B column names: every key any record has, in first-seen order."""
    return list(dict.fromkeys(k for r in result.records for k in r))


def to_csv(result: Result) -> str:
    """One CSV line per row: group, row, arch_id, status, then per column the paper value and
    segnas's (latency: ratios and segnas's ms); empty where there is none."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=csv_columns(result), lineterminator="\n")
    w.writeheader()
    w.writerows(result.records)
    return buf.getvalue()


def log_wandb(result: Result, out: Path, wandb_cfg: Any, config: str = "") -> str | None:
    """One W&B run (job type paper-table) holding the table; offline unless `wandb.mode` says
    otherwise, its files under `out`. Returns the run folder, or None when disabled."""
    cfg = dict((wandb_cfg.to_dict() if hasattr(wandb_cfg, "to_dict") else wandb_cfg) or {})
    mode = str(cfg.get("mode") or "offline")
    if mode == "disabled":
        return None
    if mode not in ("offline", "online"):
        raise UserError(f"wandb.mode: got {mode!r}; allowed: offline, online, disabled")
    import wandb

    cols = csv_columns(result)
    rows = [[r.get(c) for c in cols] for r in result.records]
    run = wandb.init(
        project=cfg.get("project") or "segnas",
        entity=cfg.get("entity") or None,
        group=result.spec.name,
        name=f"{result.spec.name}-table",
        job_type="paper-table",
        dir=str(out),
        mode=mode,
        reinit="create_new",
        settings=wandb.Settings(console="off", silent=True, x_disable_stats=True, disable_git=True),
        config={"title": result.spec.title, "config": config, "notes": result.notes},
    )
    try:
        run.log({"table": wandb.Table(columns=cols, data=rows)})
        run_dir = str(Path(run.dir).parent)
    finally:
        run.finish()
    return run_dir
