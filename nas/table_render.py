"""A computed paper table (`nas.tables.Result`) as text and records: Markdown, CSV, W&B.

`nas.tables` computes the cells; this module reads a sweep's results (`sweep_results`) and
writes the table out (its notes, Markdown, CSV, W&B), so that the table's logic and its
output forms stay in files of their own size. `nas.tables` re-exports every public name here
(`Result`, `sweep_results`, `table_notes`, `to_markdown`, `csv_columns`, `to_csv`,
`log_wandb`), which is how callers use them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import UserError

if TYPE_CHECKING:  # nas.tables imports this module: its types are only named here
    from nas.tables import TableSpec


@dataclasses.dataclass
class Result:
    """A computed table: display cells (markdown) and numeric records (CSV, W&B)."""

    spec: TableSpec
    header: list[str]
    cells: list[list[str]]
    records: list[dict[str, Any]]
    notes: list[str]


def sweep_results(workdir: Path | str | None) -> dict[str, dict[str, Any]]:
    """arch id -> metrics of its latest complete trial in WORKDIR/trials.jsonl ({} if none)."""
    path = Path(workdir) / "trials.jsonl" if workdir else None
    if path is None or not path.is_file():
        return {}
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(r, dict) or r.get("state") != "complete" or not r.get("arch_id"):
            continue
        n = int(r.get("number") or 0)
        if r["arch_id"] not in found or n >= found[r["arch_id"]][0]:
            found[r["arch_id"]] = (n, dict(r.get("metrics") or {}))
    return {k: m for k, (_, m) in found.items()}


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


def table_notes(
    spec: TableSpec, ms: Mapping[str, float], how: str, workdir: Path | str | None
) -> list[str]:
    """The lines under a table: how each column was filled, the named ratios (paper and
    segnas; `ms` by `nas.tables.timing_key`), then the config's own notes."""
    from nas.tables import timing_key  # here: nas.tables imports this module

    notes = []
    by_name = {r.name: r for r in spec.rows}
    for c in spec.columns:
        if c.kind == "latency":
            notes.append(f"{c.title}: ratio to row {c.fields['reference']!r}; segnas {how}.")
        elif c.kind == "structural" and c.fields.get("resolution"):
            h, w = c.fields["resolution"]
            notes.append(f"{c.title}: counted at {h}x{w} (height x width), each row's arch.")
        elif c.kind == "paper":
            notes.append(f"{c.title}: the paper's only ({c.fields['reason'] or 'not built'}).")
        elif c.kind == "accuracy":
            src = f"{Path(workdir) / 'trials.jsonl'}" if workdir else "no --workdir given"
            notes.append(f"{c.title}: segnas {c.fields['metric']} x {c.fields['scale']} ({src}).")
    for x in spec.ratios:
        num, den = by_name[x["numerator"]], by_name[x["denominator"]]
        key = x["column"]
        pn, pd = num.paper.get(key), den.paper.get(key)
        paper = f"{pn / pd:.2f}" if pn is not None and pd else "–"
        sn, sd = ms.get(timing_key(num)), ms.get(timing_key(den))
        mine = f"{sn / sd:.2f}" if sn is not None and sd else "not measured"
        notes.append(f"{x.get('name') or key}: paper {paper}, segnas {mine}.")
    return notes + list(spec.notes)
