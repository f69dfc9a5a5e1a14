"""A paper's table beside segnas's own figures: what `segnas table` computes and writes.

A config's `table` section (see `experiments/seed000/table1.py`) declares:

- `name` (files, W&B group), `title` (the paper's caption), `workdir` (where the sweep that
  fills the accuracy columns runs, for the command printed when it has not run), `notes`;
- `rows`: one dict per printed row: `name` (unique), `group` (the paper's row group, may be
  ""), `arch` (a preset name or a flat arch dict; "" or None: a row the paper has but segnas
  does not build, printed "paper only (not built)"), `paper` (column key -> printed value; a
  key left out, or None, is a cell the paper leaves empty or marks n/a: printed "–");
- `columns`: one dict per paper column, with `key`, `title` and a `kind`:
    - `structural`: `metric` of `nas.cost.cost` (params, macs, flops, bytes_fp32, bytes_fp16,
      bytes_int8: the deployed model's, without the auxiliary heads only training reads, which
      is what a paper's model size / OPs describe; params_train, macs_train: with them) times
      `scale`, to `digits` decimals; optional `resolution` [height, width]: the metric of
      each row's arch at that input size instead of its own (a paper that counts OPs at
      another size than it trains at: seed 001's Table 2 trains at 769² and counts at
      360x640; the row keeps its trained arch, so its accuracy cells still match the sweep);
    - `latency`: measured (or predicted) on this machine, printed as a ratio to the row named
      `reference`, the paper's value beside with its own ratio to that row (the paper's device
      is not this machine: only ratios compare);
    - `accuracy`: `metric` (e.g. val/miou) times `scale` from WORKDIR/trials.jsonl of a
      finished sweep, matched by arch id; else "not run: `command`" (its `{config}` and
      `{workdir}` filled in);
    - `paper`: a column segnas cannot reproduce (`reason`), the paper's value only;
- `latency`: `mode` (measure | predict | skip), `target`, `threads`, `rounds`, `warmup`,
  `seed` (see nas/latency/measure.py), `table` (predict: the latency table; "" = default path),
  `output` (measure: `logits`, or `labels` for models that end in their argmax);
- a row's optional `latency_output` (measure or skip only): that row's own output, e.g.
  `labels_vim16` (labels through the Valid Interpolate Module, 16 classes kept; checked
  against the row's arch by `nas.latency.blocks.check_output`) beside rows ending in the
  plain argmax; one arch timed with two outputs is two models;
- `ratios` (optional): dicts `name`, `column`, `numerator`, `denominator` (row names): one
  latency ratio between two rows, printed under the table for the paper and for segnas.

Measured latency times every distinct arch as a whole model, all of them side by side in one
interleaved run (`nas.latency.build.measure_models`: warm-up, single calls in a fresh random
order each round, the median), the protocol of segnas's latency tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import UserError
from nas.space.arch import Arch
from nas.space.resolve import resolve_arch_spec

# re-exported: the output forms live in nas/table_render.py, callers reach them here
from nas.table_render import (  # noqa: F401
    Result,
    csv_columns,
    log_wandb,
    sweep_results,
    table_notes,
    to_csv,
    to_markdown,
)

KINDS: tuple[str, ...] = ("structural", "latency", "accuracy", "paper")
STRUCTURAL_METRICS: tuple[str, ...] = (
    "params",
    "macs",
    "flops",
    "bytes_fp32",
    "bytes_fp16",
    "bytes_int8",
    "params_train",
    "macs_train",
)
LATENCY_MODES: tuple[str, ...] = ("measure", "predict", "skip")
NOT_BUILT = "paper only (not built)"
# Fields each column kind reads, beyond key / kind / title.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "structural": ("metric", "scale", "digits", "resolution"),
    "latency": ("reference", "digits"),
    "accuracy": ("metric", "scale", "digits", "command"),
    "paper": ("reason",),
}
_LATENCY_DEFAULTS: dict[str, Any] = dict(
    mode="measure",
    target="litert-cpu",
    threads=1,
    rounds=10,
    warmup=2,
    seed=0,
    table="",
    output="logits",  # or "labels": the model ends in its argmax, as deployed
)
LATENCY_OUTPUTS: tuple[str, ...] = ("logits", "labels")


@dataclasses.dataclass(frozen=True)
class Column:
    """One paper column: its key, kind, title and the kind's fields (see the module doc)."""

    key: str
    kind: str
    title: str
    fields: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Row:
    """One paper row: name, group, the arch segnas builds for it (None: not built), values."""

    name: str
    group: str
    arch: Arch | None
    paper: dict[str, Any]
    output: str = ""  # its own latency output ("": the table's `latency.output`)


def timing_key(row: Row) -> str:
    """The key of a built row's latency: its arch id, `ID:OUTPUT` when it has its own output
    (the same arch timed with two outputs is two models)."""
    assert row.arch is not None
    return f"{row.arch.id}:{row.output}" if row.output else row.arch.id


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A validated `table` section."""

    name: str
    title: str
    workdir: str
    notes: tuple[str, ...]
    rows: tuple[Row, ...]
    columns: tuple[Column, ...]
    latency: dict[str, Any]
    ratios: tuple[dict[str, str], ...]


def _as_dict(x: Any) -> Any:
    return x.to_dict() if hasattr(x, "to_dict") else x


def _need(d: Mapping[str, Any], key: str, field: str, allowed: str) -> Any:
    if key not in d or d[key] in (None, ""):
        raise UserError(f"{field}.{key}: missing; allowed: {allowed}")
    return d[key]


def _resolution(v: Any, field: str) -> tuple[int, int] | None:
    """A structural column's `resolution` as (height, width), None when not given."""
    if v is None:
        return None
    ok = (
        isinstance(v, (list, tuple))
        and len(v) == 2
        and all(type(x) is int and x > 0 for x in v)  # bool and float sizes are refused too
    )
    if not ok:
        raise UserError(f"{field}: got {v!r}; allowed: [height, width], two positive integers")
    return (v[0], v[1])


def counted_arch(arch: Arch, column: Column) -> Arch:
    """The arch whose structural figure `column` prints for a row of `arch`: `arch` itself,
    or at the column's `resolution` when it has one."""
    res = column.fields.get("resolution")
    return arch if res is None else arch.replace(resolution=res)


def _column(i: int, c: Any) -> Column:
    field = f"table.columns[{i}]"
    if not isinstance(c, Mapping):
        raise UserError(f"{field}: got {c!r}; allowed: a dict with key, kind, title")
    kind = c.get("kind")
    if kind not in KINDS:
        raise UserError(f"{field}.kind: got {kind!r}; allowed: {', '.join(KINDS)}")
    key = str(_need(c, "key", field, "a short column name, e.g. size"))
    extra = sorted(set(c) - {"key", "kind", "title", *_KIND_FIELDS[kind]})
    if extra:
        raise UserError(
            f"{field}.{extra[0]}: not a field of a {kind} column; allowed: key, kind, title, "
            + ", ".join(_KIND_FIELDS[kind])
        )
    fields = {k: c[k] for k in _KIND_FIELDS[kind] if k in c}
    if kind in ("structural", "accuracy"):
        metric = _need(c, "metric", field, "a metric name")
        if kind == "structural" and metric not in STRUCTURAL_METRICS:
            raise UserError(
                f"{field}.metric: got {metric!r}; allowed: {', '.join(STRUCTURAL_METRICS)}"
            )
        fields.setdefault("scale", 1.0)
    if kind == "structural":
        fields["resolution"] = _resolution(c.get("resolution"), f"{field}.resolution")
    if kind == "latency":
        _need(c, "reference", field, "the name of the row latencies are divided by")
    if kind == "accuracy":
        _need(c, "command", field, "the command that fills the column, with {workdir}")
    fields.setdefault("digits", 2)
    fields.setdefault("reason", "")
    return Column(key, kind, str(c.get("title") or key), fields)


def _row(i: int, r: Any, keys: set[str]) -> Row:
    field = f"table.rows[{i}]"
    if not isinstance(r, Mapping):
        raise UserError(f"{field}: got {r!r}; allowed: a dict with name, group, arch, paper")
    name = str(_need(r, "name", field, "the row's name as the paper prints it"))
    spec = _as_dict(r.get("arch"))
    arch = None if spec in (None, "") else resolve_arch_spec(spec, f"{field}.arch")
    paper = dict(_as_dict(r.get("paper")) or {})
    unknown = sorted(set(paper) - keys)
    if unknown:
        raise UserError(
            f"{field}.paper: unknown column {unknown[0]!r}; allowed: {', '.join(sorted(keys))}"
        )
    output = r.get("latency_output") or ""
    if output:  # a form the latency package builds, and a VIM that fits the arch
        from nas.latency.blocks import check_output, parse_output

        try:
            check_output(arch, output) if arch else parse_output(output)
        except ValueError as e:
            allowed = str(e).partition("; allowed: ")[2]
            raise UserError(f"{field}.latency_output: got {output!r}; allowed: {allowed}") from None
    return Row(name, str(r.get("group") or ""), arch, paper, str(output))


def parse_table(section: Any) -> TableSpec:
    """The `table` section as a TableSpec; a UserError naming the first bad field."""
    if section is None:
        raise UserError(
            "--config: the config has no `table` section; allowed: a config with one, "
            "e.g. experiments/seed000/table1.py"
        )
    t = _as_dict(section)
    columns = tuple(_column(i, c) for i, c in enumerate(t.get("columns") or ()))
    if not columns:
        raise UserError("table.columns: missing; allowed: one or more column dicts")
    keys = {c.key for c in columns}
    if len(keys) < len(columns):
        raise UserError("table.columns: two columns share a key; allowed: unique keys")
    rows = tuple(_row(i, r, keys) for i, r in enumerate(t.get("rows") or ()))
    if not rows:
        raise UserError("table.rows: missing; allowed: one or more row dicts")
    names = [r.name for r in rows]
    if len(set(names)) < len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"table.rows: name {dup!r} given twice; allowed: unique row names")
    built = [r.name for r in rows if r.arch is not None]
    for i, c in enumerate(columns):
        for r in rows if c.fields.get("resolution") else ():
            try:
                if r.arch is not None:
                    counted_arch(r.arch, c)
            except ValueError as e:  # e.g. a side below the row's output stride
                raise UserError(
                    f"table.columns[{i}].resolution: got {list(c.fields['resolution'])}; "
                    f"allowed: a size every built row's arch takes (row {r.name!r}: {e})"
                ) from None
        ref = c.fields.get("reference")
        if c.kind == "latency" and ref not in built:
            raise UserError(
                f"table.columns[{i}].reference: got {ref!r}; allowed: a built row "
                f"({', '.join(built)})"
            )
    lat = {**_LATENCY_DEFAULTS, **dict(_as_dict(t.get("latency")) or {})}
    unknown = sorted(set(lat) - set(_LATENCY_DEFAULTS))
    if unknown:
        raise UserError(
            f"table.latency.{unknown[0]}: unknown; allowed: {', '.join(_LATENCY_DEFAULTS)}"
        )
    if lat["mode"] not in LATENCY_MODES:
        raise UserError(
            f"table.latency.mode: got {lat['mode']!r}; allowed: {', '.join(LATENCY_MODES)}"
        )
    if lat["output"] not in LATENCY_OUTPUTS:
        raise UserError(
            f"table.latency.output: got {lat['output']!r}; allowed: {', '.join(LATENCY_OUTPUTS)}"
        )
    own = next((r.name for r in rows if r.output), None)
    if own is not None and lat["mode"] == "predict":
        raise UserError(
            f"table.latency.mode: got 'predict' with row {own!r}'s own latency_output; "
            "allowed: measure, skip (a latency table predicts one output)"
        )
    ratios = tuple(dict(_as_dict(x)) for x in t.get("ratios") or ())
    for i, x in enumerate(ratios):
        col = next((c for c in columns if c.key == x.get("column")), None)
        if col is None or col.kind != "latency":
            lat_keys = ", ".join(c.key for c in columns if c.kind == "latency")
            raise UserError(
                f"table.ratios[{i}].column: got {x.get('column')!r}; allowed: {lat_keys}"
            )
        for end in ("numerator", "denominator"):
            if x.get(end) not in built:
                raise UserError(
                    f"table.ratios[{i}].{end}: got {x.get(end)!r}; allowed: {', '.join(built)}"
                )
    return TableSpec(
        name=str(t.get("name") or "table"),
        title=str(t.get("title") or t.get("name") or "table"),
        workdir=str(t.get("workdir") or "WORKDIR"),
        notes=tuple(t.get("notes") or ()),
        rows=rows,
        columns=columns,
        latency=lat,
        ratios=ratios,
    )


def distinct_archs(spec: TableSpec) -> list[Arch]:
    """Every arch the table builds, once each, in row order."""
    seen: dict[str, Arch] = {}
    for r in spec.rows:
        if r.arch is not None:
            seen.setdefault(r.arch.id, r.arch)
    return list(seen.values())


def structural(archs: Sequence[Arch]) -> dict[str, dict[str, Any]]:
    """`nas.cost.cost` of each arch, by arch id."""
    from nas import cost

    return {a.id: cost.cost(a) for a in archs}


def latencies(
    archs: Sequence[Arch], settings: Mapping[str, Any], progress: bool = True
) -> tuple[dict[str, float], str]:
    """(arch id -> ms, how they were obtained), per `settings` (the `table.latency` section)."""
    mode, target, threads = settings["mode"], settings["target"], int(settings["threads"])
    if mode == "skip" or not archs:
        return {}, "latency not measured (table.latency.mode=skip)"
    from nas.latency import measure

    measure.check_target(target, threads)
    if mode == "predict":
        from nas.latency import load_table, predict
        from nas.latency.table import default_path

        path = settings["table"] or default_path(target, threads)
        if not Path(path).is_file():
            raise UserError(
                f"table.latency.table: {str(path)!r} not found; allowed: a table from "
                f"`segnas latency build --target {target} --threads {threads}`"
            )
        table = load_table(path)
        ms = {a.id: predict(a, table) for a in archs}
        return ms, f"predicted from the latency table {path} ({target}, {threads} thread(s))"
    from nas.latency.build import measure_models
    from nas.latency.table import cpu_model

    rounds, warmup = int(settings["rounds"]), int(settings["warmup"])
    run = {"rounds": rounds, "warmup": warmup, "seed": int(settings["seed"])}
    # One chunk holding every model: all of them interleaved in every round.
    stats = measure_models(
        list(archs),
        target,
        threads,
        {**run, "chunk": 2 * len(archs)},
        output=settings.get("output", "logits"),
        progress=progress,
        desc=f"timing {len(archs)} models side by side ({target})",
    )
    how = (
        f"measured on this machine ({cpu_model()}), {target}, {threads} thread(s): "
        f"{len(archs)} whole models ({settings.get('output', 'logits')}) side by side, median "
        f"of {rounds} interleaved runs after {warmup} warm-up runs"
    )
    return {k: v["median_ms"] for k, v in stats.items()}, how


def row_latencies(spec: TableSpec, progress: bool = True) -> tuple[dict[str, float], str]:
    """(timing key -> ms, how) of the built rows: the `latencies` of the distinct archs, or,
    with rows of their own output, every (arch, output) whole model side by side in one
    interleaved chunk, as `latencies` times its models."""
    s = spec.latency
    if not any(r.output for r in spec.rows) or s["mode"] == "skip":
        return latencies(distinct_archs(spec), s, progress)
    from nas.latency import measure
    from nas.latency.blocks import whole_model
    from nas.latency.build import time_chunk
    from nas.latency.table import cpu_model

    target, threads, rounds, warmup = s["target"], int(s["threads"]), s["rounds"], s["warmup"]
    measure.check_target(target, threads)
    pairs = {timing_key(r): (r.arch, r.output or s["output"]) for r in spec.rows if r.arch}
    timers = {
        key: measure.make_timer(target, *whole_model(arch, output), threads=threads)
        for key, (arch, output) in pairs.items()
    }
    run = {"rounds": int(rounds), "warmup": int(warmup), "seed": int(s["seed"])}
    samples = time_chunk(timers, run, 0, None)[0]
    how = (
        f"measured on this machine ({cpu_model()}), {target}, {threads} thread(s): "
        f"{len(timers)} whole models ({', '.join(sorted({o for _, o in pairs.values()}))}) "
        f"side by side, median of {rounds} interleaved runs after {warmup} warm-up runs"
    )
    return {k: measure.summarize(v)["median_ms"] for k, v in samples.items()}, how


def _fmt(v: float, digits: int) -> str:
    return f"{v:,.{int(digits)}f}"


def _paper_text(v: Any) -> str:
    return "–" if v is None else str(v)


def compute(
    spec: TableSpec,
    workdir: Path | str | None = None,
    command: str = "",
    progress: bool = True,
) -> Result:
    """Every cell of the table: costs, latencies (per `spec.latency`), the sweep's accuracy
    from `workdir`; `command` (the config flag) and the workdir fill accuracy commands."""
    archs = distinct_archs(spec)
    kinds = {c.kind for c in spec.columns}
    # each structural column counts the rows' archs, or them at its own resolution
    counted = {
        b.id: b
        for c in spec.columns
        if c.kind == "structural"
        for b in (counted_arch(a, c) for a in archs)
    }
    costs = structural(list(counted.values()))
    ms, how = row_latencies(spec, progress) if "latency" in kinds else ({}, "")
    sweep = sweep_results(workdir)
    by_name = {r.name: r for r in spec.rows}
    fill = {"{workdir}": str(workdir or spec.workdir), "{config}": command or "CONFIG"}
    own = any(r.output for r in spec.rows)

    header = ["group", "row", "arch"]
    for c in spec.columns:
        both = [f"{c.title}, paper", f"{c.title}, segnas"]
        header += [f"{c.title}, paper only"] if c.kind == "paper" else both
    cells, records, previous_group = [], [], None
    for r in spec.rows:
        a = r.arch
        rec: dict[str, Any] = {"group": r.group, "row": r.name, "arch_id": a.id if a else None}
        rec["status"] = "built" if a else NOT_BUILT
        line = ["" if r.group == previous_group else r.group, r.name, a.id if a else "–"]
        previous_group = r.group
        for c in spec.columns:
            p, f = r.paper.get(c.key), c.fields
            rec[f"{c.key}.paper"] = p
            if c.kind == "paper":
                line.append(_paper_text(p))
                continue
            if c.kind == "latency":
                ref = by_name[f["reference"]]
                p_ref = ref.paper.get(c.key)
                p_ratio = p / p_ref if p is not None and p_ref else None
                rec[f"{c.key}.paper_ratio"] = None if p_ratio is None else round(p_ratio, 4)
                text = _paper_text(p)
                line.append(text if p_ratio is None else f"{text} ({p_ratio:.2f}×)")
            else:
                line.append(_paper_text(p))
            if a is None:
                line.append(NOT_BUILT)
                rec[f"{c.key}.segnas"] = None
            elif c.kind == "structural":
                v = costs[counted_arch(a, c).id][f["metric"]] * float(f["scale"])
                rec[f"{c.key}.segnas"] = v
                line.append(_fmt(v, f["digits"]))
            elif c.kind == "latency":
                mine, mine_ref = ms.get(timing_key(r)), ms.get(timing_key(ref))
                ratio = mine / mine_ref if mine is not None and mine_ref else None
                rec[f"{c.key}.segnas"] = None if ratio is None else round(ratio, 4)
                rec[f"{c.key}.segnas_ms"] = mine
                if own:  # only tables with rows of their own output have this column
                    rec[f"{c.key}.output"] = r.output or spec.latency["output"]
                line.append("not measured" if ratio is None else f"{ratio:.2f}× ({mine:.1f} ms)")
            else:  # accuracy
                v = sweep.get(a.id, {}).get(f["metric"])
                rec[f"{c.key}.segnas"] = None if v is None else float(v) * float(f["scale"])
                todo = str(f["command"])
                for k, text in fill.items():
                    todo = todo.replace(k, text)
                line.append(
                    f"not run: {todo}"
                    if v is None
                    else _fmt(float(v) * float(f["scale"]), f["digits"])
                )
        cells.append(line)
        records.append(rec)
    return Result(spec, header, cells, records, table_notes(spec, ms, how, workdir))
