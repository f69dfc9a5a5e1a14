"""Seed 002's table configs (experiments/seed002/): rows and their params (pinned by hand),
the sweeps that train them, the paper's recipe, and nas/tables.py's per-row latency output
(VIM rows timed beside plain-argmax rows)."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from data.ops import parse
from experiments.seed002 import table1, table2, table3, table4
from nas import tables
from nas.config import load_config
from nas.errors import UserError
from nas.search.spec import arch_from_params, planned_trials, spec_from_config
from nas.space.encoding import params_of
from nas.space.presets import preset

CONFIGS = {"table1": table1, "table2": table2, "table3": table3, "table4": table4}
NOT_BUILT = tables.NOT_BUILT
# Params by hand. The head's last conv is 256 x C + C (bias): 38,550 at 150 classes, 4,883 at
# 19, so a preset at 19 classes has 33,667 fewer: Tiny 1,492,298 - 33,667 = 1,458,631, Base
# 5,943,878 - 33,667 = 5,910,211. LR-ASPP: torchvision's 3,221,538 at 21 classes, two classifier
# convs 40 -> C and 128 -> C with bias (170 params per class): 150 classes + 129 x 170 =
# 3,243,468, 19 classes - 2 x 170 = 3,221,198. AAM switches on Base: no ensemble vote adds a
# 256 -> 256 conv + BN (65,536 + 512 = 66,048), no final semantics drops the 192 -> 256 one
# (49,152 + 512 = 49,664): 5,894,214 / 6,009,926 / both off 5,960,262.
PARAMS = {
    "table1": {
        "LR-ASPP (MobileNetV3-large-x1)": 3_243_468,
        "PP-MobileSeg-Tiny": 1_492_298,
        "PP-MobileSeg-Base": 5_943_878,
        "PP-MobileSeg-Tiny, no VIM": 1_492_298,
        "PP-MobileSeg-Base, no VIM": 5_943_878,
    },
    "table2": {
        "LR-ASPP (MobileNetV3-large-x1), segnas's reference": 3_221_198,
        "PP-MobileSeg-Tiny": 1_458_631,
        "PP-MobileSeg-Base": 5_910_211,
    },
    "table3": {
        "StrideFormer-Base + VIM": 5_960_262,
        "StrideFormer-Base + AAM + VIM": 5_943_878,
        "StrideFormer-Base, no VIM": 5_960_262,
        "StrideFormer-Base + AAM, no VIM": 5_943_878,
    },
    "table4": {
        "Ensemble vote, no final semantics": 5_894_214,
        "Final semantics, no ensemble vote": 6_009_926,
        "Ensemble vote + final semantics (PP-MobileSeg-Base)": 5_943_878,
    },
}
PAPER_ONLY = {
    "table1": ["MobileSeg (MobileNetV3-large-x1)", "TopFormer-Tiny", "SeaFormer-Tiny"]
    + ["TopFormer-Base", "SeaFormer-Base"],
    "table2": ["SeaFormer-Small", "SeaFormer-Base"],
    "table3": ["SeaFormer-Base", "SeaFormer-Base + VIM"],
    "table4": [],
}


def small(spec: tables.TableSpec) -> tables.TableSpec:
    """The spec with every row at 64x64 (a quick trace; params do not depend on the size) and
    no latency measured."""
    rows = tuple(
        dataclasses.replace(r, arch=r.arch.replace(resolution=(64, 64))) if r.arch else r
        for r in spec.rows
    )
    return dataclasses.replace(spec, rows=rows, latency={**spec.latency, "mode": "skip"})


@pytest.mark.parametrize("name", list(CONFIGS))
def test_params_of_every_built_row_beside_the_papers(name):
    spec = small(tables.parse_table(CONFIGS[name].get_config().table))
    result = tables.compute(spec, None, command=f"experiments/seed002/{name}.py")
    counted = {r["row"]: round(r["params.segnas"] * 1e6) for r in result.records if r["arch_id"]}
    assert counted == PARAMS[name]
    cells = {c[1]: c for c in result.cells}
    j = result.header.index("Params (M), segnas")
    for row in PAPER_ONLY[name]:  # the paper's figure, then "paper only" for segnas
        assert cells[row][2] == "–" and cells[row][j] == NOT_BUILT
        assert cells[row][j - 1] not in ("", "–")


def test_table1_rows_cells_and_latency_outputs():
    config = table1.get_config()
    spec = tables.parse_table(config.table)
    assert [r.name for r in spec.rows][:8] == [
        "LR-ASPP (MobileNetV3-large-x1)",
        "MobileSeg (MobileNetV3-large-x1)",
        "TopFormer-Tiny",
        "SeaFormer-Tiny",
        "PP-MobileSeg-Tiny",
        "TopFormer-Base",
        "SeaFormer-Base",
        "PP-MobileSeg-Base",
    ]
    by = {r.name: r for r in spec.rows}
    lraspp = preset("lraspp_mobilenet_v3_large")
    assert (
        by["LR-ASPP (MobileNetV3-large-x1)"].arch.id
        == lraspp.replace(num_classes=150, resolution=(512, 512)).id
    )
    assert by["PP-MobileSeg-Base"].arch.id == preset("pp_mobileseg_base").id
    assert by["PP-MobileSeg-Tiny"].arch.id == preset("pp_mobileseg_tiny").id
    outputs = {r.name: r.output for r in spec.rows if r.arch}
    assert outputs == {
        "LR-ASPP (MobileNetV3-large-x1)": "",
        "PP-MobileSeg-Tiny": "labels_vim16",
        "PP-MobileSeg-Base": "labels_vim16",
        "PP-MobileSeg-Tiny, no VIM": "",
        "PP-MobileSeg-Base, no VIM": "",
    }
    assert spec.latency["output"] == "labels" and spec.latency["threads"] == 1
    assert by["SeaFormer-Base"].paper == {"miou": 40.20, "latency": 465.4, "params": 8.64}
    # the paper's ratios to LR-ASPP print beside its ms: 215.3 / 730.9 = 0.2946
    result = tables.compute(small(spec), None, "cfg.py")
    cells = {c[1]: c for c in result.cells}
    k = result.header.index("Latency (ms), paper")
    assert cells["PP-MobileSeg-Tiny"][k] == "215.3 (0.29×)"
    assert cells["PP-MobileSeg-Base"][k] == "265.5 (0.36×)"
    assert "PP-MobileSeg-Base / PP-MobileSeg-Tiny (VIM): paper 1.23, segnas not measured." in (
        result.notes
    )


def test_tables_2_to_4_rows_paper_values_and_outputs():
    spec = {n: tables.parse_table(CONFIGS[n].get_config().table) for n in CONFIGS}
    paper = {n: {r.name: r.paper for r in s.rows} for n, s in spec.items()}
    assert list(paper["table2"]) == [
        "LR-ASPP (MobileNetV3-large-x1), segnas's reference",
        "SeaFormer-Small",
        "PP-MobileSeg-Tiny",
        "SeaFormer-Base",
        "PP-MobileSeg-Base",
    ]
    assert paper["table2"]["PP-MobileSeg-Base"] == {"miou": 74.14, "latency": 323.7, "params": 5.71}
    assert paper["table2"]["LR-ASPP (MobileNetV3-large-x1), segnas's reference"] == {}
    assert all(not r.output for r in spec["table2"].rows)  # no VIM on Cityscapes
    assert list(paper["table3"]) == [
        "SeaFormer-Base",
        "SeaFormer-Base + VIM",
        "StrideFormer-Base + VIM",
        "StrideFormer-Base + AAM + VIM",
        "StrideFormer-Base, no VIM",
        "StrideFormer-Base + AAM, no VIM",
    ]
    assert paper["table3"]["SeaFormer-Base + VIM"] == {
        "miou": 40.2,
        "latency": 234.6,
        "params": 8.17,
    }
    assert paper["table3"]["StrideFormer-Base + VIM"] == {
        "miou": 40.98,
        "latency": 235.1,
        "params": 5.54,
    }
    outputs = {r.name: r.output for r in spec["table3"].rows if r.arch}
    assert outputs == {
        "StrideFormer-Base + VIM": "labels_vim16",
        "StrideFormer-Base + AAM + VIM": "labels_vim16",
        "StrideFormer-Base, no VIM": "",
        "StrideFormer-Base + AAM, no VIM": "",
    }
    no_aam = {r.name: r.arch.decoder.config for r in spec["table3"].rows if r.arch}
    assert (
        no_aam["StrideFormer-Base + VIM"].ensemble_vote,
        no_aam["StrideFormer-Base + VIM"].final_semantics,
    ) == (False, False)
    assert paper["table4"] == {
        "Ensemble vote, no final semantics": {"miou": 41.12, "params": 5.71},
        "Final semantics, no ensemble vote": {"miou": 41.53, "params": 5.63},
        "Ensemble vote + final semantics (PP-MobileSeg-Base)": {"miou": 41.57, "params": 5.71},
    }
    switches = [
        (r.arch.decoder.config.ensemble_vote, r.arch.decoder.config.final_semantics)
        for r in spec["table4"].rows
    ]
    assert switches == [(True, False), (False, True), (True, True)]
    assert [c.kind for c in spec["table4"].columns] == ["accuracy", "structural"]


@pytest.mark.parametrize(
    "name, models, hw, classes",
    [
        ("table1", 9, (512, 512), 150),
        ("table2", 9, (512, 1024), 19),
        ("table3", 4, (512, 512), 150),
        ("table4", 4, (512, 512), 150),
    ],
)
@pytest.mark.parametrize("mode", ["", "smoke"])
def test_each_sweep_trains_every_built_row(name, models, hw, classes, mode, tmp_path):
    config = CONFIGS[name].get_config(mode)
    search = spec_from_config(config, tmp_path)
    trained = {arch_from_params(params_of(a, search.space), search).id for a in search.space.grid()}
    built = {r.arch.id for r in tables.parse_table(config.table).rows if r.arch is not None}
    assert len(trained) == models and built <= trained
    assert planned_trials(search) == models  # Tables 1-2: 12 grid points, 9 distinct archs
    if mode == "smoke":  # toy_scenes many (33 classes) / images (5) at 64 px
        hw, classes = ((64, 128), 5) if name == "table2" else ((64, 64), 33)
    rows = [r.arch for r in tables.parse_table(config.table).rows if r.arch is not None]
    assert {(a.resolution, a.num_classes) for a in rows} == {(hw, classes)}


def test_tables_3_and_4_share_one_sweep(tmp_path):
    for mode in ("", "smoke"):
        s3, s4 = table3.get_config(mode).search, table4.get_config(mode).search
        assert s3.to_dict() == s4.to_dict() and s3.study_name == "seed002_table3"
        assert planned_trials(spec_from_config(table3.get_config(mode), tmp_path)) == 4
    assert table3.get_config().table.workdir == table4.get_config().table.workdir


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_papers_recipe_in_the_default_mode(name):
    c = CONFIGS[name].get_config()
    t = c.train
    assert (t.optimizer, t.lr, t.weight_decay, t.batch_size, t.steps) == (
        "adamw",
        6e-4,
        0.01,
        32,
        80_000,
    )
    assert (t.schedule, t.warmup_steps, t.warmup_lr, t.power, t.end_lr, t.ema) == (
        "warmup_poly",
        1500,
        1e-6,
        1.0,
        0.0,
        0.999,
    )
    assert (t.loss.ce, t.loss.lovasz) == (0.8, 0.2)
    city = name == "table2"
    assert c.data.name == ("cityscapes/semantic_segmentation" if city else "ade20k")
    crop = "random_crop(512, 1024)" if city else "random_crop(512, 512)"
    assert crop in c.data.preprocess_train
    for spec in (c.data.preprocess_train, c.data.preprocess_eval):
        assert parse(spec).ops[-1].__class__.__name__ == "Standardize"


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_mode_loads_and_a_bad_one_names_the_allowed(name):
    path = f"experiments/seed002/{name}.py"
    for arg in CONFIGS[name].ARGS:
        config = load_config(f"{path}:{arg}" if arg else path)
        assert tables.parse_table(config.table).rows
        assert config.train.steps == (2 if arg == "smoke" else 80_000)
    with pytest.raises(
        ValueError, match=f"^seed002_{name} config arg: got 'gpu'; allowed: none or"
    ):
        CONFIGS[name].get_config("gpu")


# --- nas/tables.py: a row's own latency output ------------------------------------------


def own_output_table(**latency) -> dict:
    """One model timed through the plain argmax and through VIM, and a paper-only row."""
    return dict(
        name="t",
        title="T",
        workdir="runs/t",
        rows=(
            dict(name="full", arch="pp_mobileseg_tiny", paper={"ms": 465.6}),
            dict(
                name="vim",
                arch="pp_mobileseg_tiny",
                latency_output="labels_vim16",
                paper={"ms": 234.6},
            ),
            dict(name="theirs", arch="", paper={"ms": 1.0}),
        ),
        columns=(dict(key="ms", kind="latency", title="Time", reference="full"),),
        latency={**dict(mode="measure", output="labels", rounds=5, warmup=1), **latency},
        ratios=(dict(name="vim / full", column="ms", numerator="vim", denominator="full"),),
    )


@pytest.fixture
def fake_timing(monkeypatch):
    """Timers that are their (arch id, output); one chunk times them at fixed medians: 10 ms
    through the plain argmax, 5 ms through VIM. Returns the chunks timed."""
    import nas.latency.blocks
    import nas.latency.build
    import nas.latency.measure
    import nas.latency.table

    calls = []

    def whole_model(arch, output="logits", seed=0):
        return (arch.id, output), ["image"]

    def time_chunk(timers, settings, start, reference):
        calls.append((dict(timers), settings))
        ms = {"labels": 10.0, "labels_vim16": 5.0}
        return {k: [ms[t[1]]] * 3 for k, t in timers.items()}, None

    monkeypatch.setattr(nas.latency.blocks, "whole_model", whole_model)
    monkeypatch.setattr(nas.latency.measure, "make_timer", lambda t, fn, x, threads=1: fn)
    monkeypatch.setattr(nas.latency.build, "time_chunk", time_chunk)
    monkeypatch.setattr(nas.latency.table, "cpu_model", lambda: "a CPU")
    return calls


def test_one_arch_with_two_outputs_is_two_models_timed_side_by_side(fake_timing):
    calls = fake_timing
    spec = tables.parse_table(own_output_table())
    full, vim = spec.rows[0], spec.rows[1]
    assert full.arch.id == vim.arch.id and (full.output, vim.output) == ("", "labels_vim16")
    assert tables.timing_key(full) == full.arch.id
    assert tables.timing_key(vim) == f"{vim.arch.id}:labels_vim16"
    result = tables.compute(spec, None, "cfg.py", progress=False)
    assert len(calls) == 1  # one interleaved chunk holding both
    timers, settings = calls[0]
    assert sorted(timers.values()) == [(full.arch.id, "labels"), (vim.arch.id, "labels_vim16")]
    assert (settings["rounds"], settings["warmup"], settings["seed"]) == (5, 1, 0)
    cells = {c[1]: c for c in result.cells}
    assert cells["full"][3:5] == ["465.6 (1.00×)", "1.00× (10.0 ms)"]
    assert cells["vim"][3:5] == ["234.6 (0.50×)", "0.50× (5.0 ms)"]
    assert cells["theirs"][4] == NOT_BUILT
    assert "vim / full: paper 0.50, segnas 0.50." in result.notes
    assert any("2 whole models (labels, labels_vim16) side by side" in n for n in result.notes)
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(result))))
    assert [(r["ms.output"], r["ms.segnas_ms"]) for r in rows] == [
        ("labels", "10.0"),
        ("labels_vim16", "5.0"),
        ("", ""),
    ]


def test_a_table_without_own_outputs_is_timed_as_before(monkeypatch):
    seen = []

    def latencies(archs, settings, progress):
        seen.append([a.id for a in archs])
        return {a.id: 2.0 for a in archs}, "timed"

    monkeypatch.setattr(tables, "latencies", latencies)
    d = own_output_table()
    d["rows"] = (d["rows"][0], d["rows"][2])
    d["ratios"] = ()
    result = tables.compute(tables.parse_table(d), None, "cfg.py", False)
    assert len(seen) == 1 and len(seen[0]) == 1
    assert "ms.output" not in tables.csv_columns(result)  # other tables' CSV unchanged


@pytest.mark.parametrize(
    "row, bad, allowed",
    [
        (1, "vim16", "logits, labels, labels_vimK"),  # not an output
        (1, "labels_vim0", "logits, labels, labels_vimK"),
        (1, "labels_vim151", "an integer in [1, 150]"),  # more classes than the model has
        (2, "labels_vim4", "VIM needs a decoder"),  # LR-ASPP has no low-resolution logits
    ],
)
def test_a_bad_row_output_is_one_line(row, bad, allowed):
    d = own_output_table()
    archs = ("pp_mobileseg_tiny", "pp_mobileseg_tiny", "lraspp_mobilenet_v3_large")
    d["rows"] = tuple(dict(name=f"r{i}", arch=a) for i, a in enumerate(archs))
    d["rows"][row]["latency_output"] = bad
    d["columns"] = (dict(key="ms", kind="latency", title="Time", reference="r0"),)
    d["ratios"] = ()
    with pytest.raises(UserError) as e:
        tables.parse_table(d)
    message = str(e.value)
    assert message.startswith(f"table.rows[{row}].latency_output: got {bad!r}; allowed: ")
    assert allowed in message and "\n" not in message


def test_a_row_output_needs_measured_latency():
    with pytest.raises(UserError, match=r"^table.latency.mode: got 'predict' with row 'vim'"):
        tables.parse_table(own_output_table(mode="predict"))
    spec = tables.parse_table(own_output_table(mode="skip"))
    result = tables.compute(spec, None, "cfg.py", False)
    assert {c[1]: c[4] for c in result.cells}["vim"] == "not measured"
