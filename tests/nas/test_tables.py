"""nas/tables.py and the seed-000 table configs: segnas's structural figures for every row
(pinned exactly), the `table` section's validation, and what a computed table holds."""

from __future__ import annotations

import csv
import io
import json

import pytest

import nas.cost
from experiments.seed000 import table1, table3
from nas import tables
from nas.errors import UserError
from nas.space.arch import Arch
from nas.space.presets import preset
from nas.space.resolve import resolve_arch_spec

# segnas's params and MACs of every row (as trained: params_train / macs_train), computed once
# with nas.cost and pinned. Hand-checked: seed000_final (the starred rows) is 4,369,380 params /
# 3,243,223,040 MACs as trained; a resolution row keeps the params, and its MACs are
# a * H * W + b with b the 51,200 MACs of the squeeze-excite dense layers (256²:
# (3,243,223,040 - 51,200) / 4 + 51,200 = 810,844,160).
# The deployed figures (`params`, `macs`, which the table shows) are those less the coarse head
# the export drops: a 1x1 conv from the encoder's stride-16 feature (`features` channels: 112
# for Lite0 and MobileNetV3-Large at width 1.0, 112 * 1.5 = 168 and 112 * 2 = 224 for the
# wider Lite0) to 2 classes with bias, at stride 32: features * 2 + 2 params and
# (side / 32)² * features * 2 MACs. seed000_final: 4,369,380 - 226 = 4,369,154 params,
# 3,243,223,040 - 16 * 16 * 112 * 2 = 3,243,223,040 - 57,344 = 3,243,165,696 MACs.
TRAIN_PINNED = [  # (config, row, params_train, macs_train, features, side)
    ("table1", "Depthwise Conv", 3_095_268, 1_980_336_128, 112, 512),
    ("table1", "Group Conv*", 4_369_380, 3_243_223_040, 112, 512),
    ("table1", "1.0*", 4_369_380, 3_243_223_040, 112, 512),
    ("table1", "1.5", 8_741_724, 6_277_026_304, 168, 512),
    ("table1", "2.0", 14_476_388, 9_696_632_832, 224, 512),
    ("table1", "Bilinear Upsampling", 4_339_236, 3_185_551_360, 112, 512),
    ("table1", "Channel Attention", 4_376_396, 3_262_761_600, 112, 512),
    ("table1", "Multilayer Perceptron*", 4_369_380, 3_243_223_040, 112, 512),
    ("table1", "256x256", 4_369_380, 810_844_160, 112, 256),
    ("table1", "384x384", 4_369_380, 1_824_335_360, 112, 384),
    ("table1", "512x512*", 4_369_380, 3_243_223_040, 112, 512),
    ("table1", "640x640", 4_369_380, 5_067_507_200, 112, 640),
    ("table3", "#W0 (Baseline)", 3_590_452, 304_058_240, 112, 256),
    ("table3", "#W1", 3_095_268, 495_122_432, 112, 256),
    ("table3", "#W2", 3_590_452, 1_210_328_960, 112, 512),
    ("table3", "#W3 (Final)", 3_095_268, 1_980_336_128, 112, 512),
]
# (config, row, params, macs, params_train, macs_train): deployed = train less the coarse head.
PINNED = [
    (c, row, p - (f * 2 + 2), m - (side // 32) ** 2 * f * 2, p, m)
    for c, row, p, m, f, side in TRAIN_PINNED
]
CONFIGS = {"table1": table1, "table3": table3}
_COSTS: dict[str, dict] = {}
_real_cost = nas.cost.cost


def cached_cost(arch: Arch) -> dict:
    """nas.cost.cost, once per arch for the whole session (rows share archs)."""
    if arch.id not in _COSTS:
        _COSTS[arch.id] = _real_cost(arch)
    return _COSTS[arch.id]


def fake_cost(arch: Arch) -> dict:
    """A stand-in for nas.cost.cost: instant, a fixed function of the arch id."""
    params = 1_000_000 + int(arch.id[:4], 16)
    macs = 1000 * params
    return {"params": params, "macs": macs, "flops": 2 * macs} | {
        f"bytes_{k}": params * n for k, n in (("fp32", 4), ("fp16", 2), ("int8", 1))
    }


def row_of(name: str, config: str = "table1", arg: str | None = None) -> dict:
    rows = CONFIGS[config].get_config(arg).table.rows
    return next(r for r in rows if r["name"] == name)


def test_the_final_rows_are_the_preset():
    final = preset("seed000_final")
    assert Arch.from_dict(dict(table1.FINAL)).id == final.id
    for name in ("Group Conv*", "1.0*", "Multilayer Perceptron*", "512x512*"):
        assert resolve_arch_spec(row_of(name)["arch"]).id == final.id


def test_every_paper_row_is_in_the_tables():
    assert [r["name"] for r in table1.get_config().table.rows] == [r[1] for r in table1.PAPER_ROWS]
    assert len(table1.get_config().table.rows) == 12 and len(table3.get_config().table.rows) == 4
    assert {(c, n) for c, n, *_ in PINNED} == {
        (k, r["name"]) for k, m in CONFIGS.items() for r in m.get_config().table.rows
    }


@pytest.mark.parametrize("config, row, params, macs, params_train, macs_train", PINNED)
def test_structural_figures_of_every_row(config, row, params, macs, params_train, macs_train):
    c = cached_cost(resolve_arch_spec(row_of(row, config)["arch"]))
    assert (c["params"], c["macs"]) == (params, macs)
    assert (c["params_train"], c["macs_train"]) == (params_train, macs_train)


def test_the_final_rows_pin_the_deployed_model():
    final = [p for p in PINNED if p[1] == "512x512*"][0]
    assert final[2:] == (4_369_154, 3_243_165_696, 4_369_380, 3_243_223_040)


def test_table1_cells_model_size_fp16_and_ops_2x_macs(monkeypatch):
    monkeypatch.setattr(nas.cost, "cost", cached_cost)
    spec = tables.parse_table(table1.get_config().table)
    spec = tables.dataclasses.replace(spec, latency={**spec.latency, "mode": "skip"})
    result = tables.compute(spec, None, command="experiments/seed000/table1.py")
    i = result.header.index("Model Size (MB), segnas")
    j = result.header.index("OPs (10^9), segnas")
    cells = {c[1]: c for c in result.cells}
    assert (cells["512x512*"][i], cells["512x512*"][j]) == ("8.74", "6.49")  # paper 8.7, 7.6
    # 2.0: (14,476,388 - 450) * 2e-6 = 28.951876; 640x640: 2 * (5,067,507,200 - 89,600) * 1e-9
    # = 10.1348352 (10.14 before the coarse head was left out: 10.1350144).
    assert (cells["2.0"][i], cells["640x640"][j]) == ("28.95", "10.13")
    rec = next(r for r in result.records if r["row"] == "Depthwise Conv")
    assert rec["size.segnas"] == pytest.approx((3_095_268 - 226) * 2e-6)
    assert rec["ops.segnas"] == pytest.approx(2 * (1_980_336_128 - 57_344) * 1e-9)
    assert rec["latency.paper_ratio"] == pytest.approx(4.7 / 6.9, abs=1e-4)


def minimal(**changes) -> dict:
    t = dict(
        name="t",
        title="A table",
        workdir="runs/t",
        rows=(
            dict(group="g", name="base", arch="seed000_baseline", paper=dict(ms=10.0, mb=7.0)),
            dict(
                group="g",
                name="wide",
                arch=dict(encoder="mobilenet_v3_small", decoder="bilinear", resolution=(64, 64)),
                paper=dict(ms=20.0, mb=3.0, acc=0.5),
            ),
            dict(group="h", name="theirs", arch="", paper=dict(ms=5.0, mb=1.0, other=1)),
        ),
        columns=(
            dict(key="ms", kind="latency", title="Time", reference="base"),
            dict(key="mb", kind="structural", title="MB", metric="bytes_fp16", scale=1e-6),
            dict(
                key="acc",
                kind="accuracy",
                title="Acc",
                metric="val/miou",
                scale=100.0,
                command="segnas search --config {config} --workdir {workdir}",
            ),
            dict(key="other", kind="paper", title="Other", reason="their device"),
        ),
        latency=dict(mode="skip"),
        ratios=(dict(name="wide/base", column="ms", numerator="wide", denominator="base"),),
    )
    t.update(changes)
    return t


def with_column(i: int, **c) -> tuple:
    cols = list(minimal()["columns"])
    cols[i] = c
    return tuple(cols)


def with_row(i: int, **r) -> tuple:
    rows = list(minimal()["rows"])
    rows[i] = {**rows[i], **r}
    return tuple(rows)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            dict(columns=with_column(0, key="ms", kind="speed")),
            "table.columns[0].kind: got 'speed'; allowed: structural, latency, accuracy, paper",
        ),
        (
            dict(columns=with_column(1, key="mb", kind="structural", metric="weights")),
            "table.columns[1].metric: got 'weights'; allowed: params, macs, flops, bytes_fp32",
        ),
        (
            dict(columns=with_column(0, key="ms", kind="latency", reference="theirs")),
            "table.columns[0].reference: got 'theirs'; allowed: a built row (base, wide)",
        ),
        (
            dict(columns=with_column(0, key="ms", kind="latency", reference="base", unit="s")),
            "table.columns[0].unit: not a field of a latency column; allowed: key, kind, title",
        ),
        (
            dict(rows=with_row(0, arch="seed999")),
            "table.rows[0].arch: got 'seed999'; allowed: a preset name (seed000_baseline",
        ),
        (
            dict(rows=with_row(0, paper=dict(fps=3.0))),
            "table.rows[0].paper: unknown column 'fps'; allowed: acc, mb, ms, other",
        ),
        (
            dict(
                columns=with_column(1, key="mb", kind="structural", metric="macs", resolution=[64])
            ),
            "table.columns[1].resolution: got [64]; allowed: [height, width], two positive "
            "integers",
        ),
        (
            dict(
                columns=with_column(
                    1, key="mb", kind="structural", metric="macs", resolution=[16] * 2
                )
            ),
            "table.columns[1].resolution: got [16, 16]; allowed: a size every built row's arch "
            "takes (row 'base': resolution: got [16, 16]; allowed: height and width >= the "
            "output stride 32)",
        ),
        (dict(rows=with_row(1, name="base")), "table.rows: name 'base' given twice"),
        (dict(rows=()), "table.rows: missing; allowed: one or more row dicts"),
        (
            dict(latency=dict(mode="fast")),
            "table.latency.mode: got 'fast'; allowed: measure, predict, skip",
        ),
        (
            dict(latency=dict(output="probs")),
            "table.latency.output: got 'probs'; allowed: logits, labels",
        ),
        (dict(latency=dict(runs=3)), "table.latency.runs: unknown; allowed: mode, target"),
        (
            dict(ratios=(dict(column="ms", numerator="theirs", denominator="base"),)),
            "table.ratios[0].numerator: got 'theirs'; allowed: base, wide",
        ),
    ],
)
def test_bad_table_sections_name_the_field(changes, message):
    with pytest.raises(UserError) as e:
        tables.parse_table(minimal(**changes))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_an_invalid_arch_dict_names_the_row_and_the_value():
    with pytest.raises(UserError) as e:
        tables.parse_table(minimal(rows=with_row(1, arch=dict(encoder="resnet", decoder="mlp"))))
    assert str(e.value).startswith("table.rows[1].arch: ") and "'resnet'" in str(e.value)


def test_a_config_without_a_table_section():
    with pytest.raises(UserError, match="--config: the config has no `table` section; allowed"):
        tables.parse_table(None)


def test_cells_paper_beside_segnas(monkeypatch, tmp_path):
    monkeypatch.setattr(nas.cost, "cost", fake_cost)
    spec = tables.parse_table(minimal())
    wide = spec.rows[1].arch
    lines = [
        {"number": 0, "state": "complete", "arch_id": wide.id, "metrics": {"val/miou": 0.4}},
        {"number": 3, "state": "complete", "arch_id": wide.id, "metrics": {"val/miou": 0.61}},
        {"number": 4, "state": "failed", "arch_id": spec.rows[0].arch.id, "metrics": {}},
    ]
    (tmp_path / "trials.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\nnot json\n")
    monkeypatch.setattr(
        tables,
        "latencies",
        lambda archs, s, p: ({a.id: 4.0 * (i + 1) for i, a in enumerate(archs)}, "timed"),
    )
    result = tables.compute(spec, tmp_path, command="cfg.py:smoke")
    assert result.header == [
        "group",
        "row",
        "arch",
        "Time, paper",
        "Time, segnas",
        "MB, paper",
        "MB, segnas",
        "Acc, paper",
        "Acc, segnas",
        "Other, paper only",
    ]
    base, wide_row, theirs = result.cells
    assert base[3:5] == ["10.0 (1.00×)", "1.00× (4.0 ms)"]
    assert wide_row[3:5] == ["20.0 (2.00×)", "2.00× (8.0 ms)"]
    assert wide_row[7:9] == ["0.5", "61.00"]  # the latest complete trial
    assert base[8] == f"not run: segnas search --config cfg.py:smoke --workdir {tmp_path}"
    assert theirs[:3] == ["h", "theirs", "–"]
    assert theirs[4] == theirs[6] == theirs[8] == tables.NOT_BUILT and theirs[9] == "1"
    assert wide_row[0] == ""  # a group is printed on its first row only
    assert "wide/base: paper 2.00, segnas 2.00." in result.notes
    assert "Other: the paper's only (their device)." in result.notes

    md = tables.to_markdown(result)
    assert md.startswith("## A table\n\n| group | row | arch | Time, paper |")
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(result))))
    assert [r["row"] for r in rows] == ["base", "wide", "theirs"]
    assert rows[1]["ms.segnas"] == "2.0" and rows[1]["ms.segnas_ms"] == "8.0"
    assert rows[1]["acc.segnas"] == "61.0" and rows[0]["acc.segnas"] == ""
    assert rows[2]["status"] == tables.NOT_BUILT and rows[2]["other.paper"] == "1"


def test_without_a_sweep_accuracy_names_the_command(monkeypatch):
    monkeypatch.setattr(nas.cost, "cost", fake_cost)
    result = tables.compute(tables.parse_table(minimal()), None, command="cfg.py")
    assert result.cells[0][8] == "not run: segnas search --config cfg.py --workdir runs/t"
    assert result.cells[0][4] == "not measured"


def test_measured_latency_times_every_model_in_one_interleaved_chunk(monkeypatch):
    calls = []

    def fake_measure_models(archs, target, threads, settings, **kw):
        calls.append((len(archs), settings))
        return {a.id: {"median_ms": 1.0} for a in archs}

    import nas.latency.build

    monkeypatch.setattr(nas.latency.build, "measure_models", fake_measure_models)
    spec = tables.parse_table(minimal(latency=dict(mode="measure", rounds=7)))
    ms, how = tables.latencies(tables.distinct_archs(spec), spec.latency, False)
    assert len(ms) == 2 and calls[0][0] == 2
    assert calls[0][1]["chunk"] >= 2 * 2 and calls[0][1]["rounds"] == 7  # one chunk: all models
    assert "2 whole models (logits) side by side, median of 7 interleaved runs" in how


def test_predicted_latency_needs_a_table(tmp_path):
    spec = tables.parse_table(
        minimal(latency=dict(mode="predict", table=str(tmp_path / "none.json")))
    )
    with pytest.raises(UserError, match="table.latency.table: '.*none.json' not found; allowed"):
        tables.latencies(tables.distinct_archs(spec), spec.latency, False)


def test_sweep_results_without_trials(tmp_path):
    assert tables.sweep_results(tmp_path) == {} and tables.sweep_results(None) == {}


def test_a_structural_column_at_its_own_resolution(monkeypatch):
    """`resolution` counts each row's arch at that size; the row stays the arch it was."""
    monkeypatch.setattr(nas.cost, "cost", fake_cost)
    at = dict(key="at", kind="structural", title="MB@", metric="params", resolution=[96, 128])
    spec = tables.parse_table(minimal(columns=(*minimal()["columns"], at)))
    wide = spec.rows[1].arch
    assert wide.resolution == (64, 64)
    result = tables.compute(spec, None, command="cfg.py")
    j = result.header.index("MB@, segnas")
    counted = wide.replace(resolution=(96, 128))
    # fake_cost's params are 1,000,000 + the first 4 hex digits of the id, so the two sizes
    # (two ids) give two figures: the column reads the one at 96x128
    assert result.cells[1][j] == f"{1_000_000 + int(counted.id[:4], 16):,.2f}"
    assert result.cells[1][j] != f"{1_000_000 + int(wide.id[:4], 16):,.2f}"
    assert result.records[1]["arch_id"] == wide.id
    assert result.cells[2][j] == tables.NOT_BUILT
    assert "MB@: counted at 96x128 (height x width), each row's arch." in result.notes
