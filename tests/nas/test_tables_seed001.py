"""Seed 001's Table 2 config (experiments/seed001/table2.py): its rows are the paper's, its
sweep trains exactly the built rows, and its GFLOPs are counted at the paper's 640x360."""

from __future__ import annotations

import pytest

from experiments.seed001 import table2
from nas import tables
from nas.search.spec import arch_from_params, planned_trials, spec_from_config
from nas.space.encoding import params_of
from nas.space.presets import preset

NAMES = [
    "SkipNet-ShuffleNet",
    "ENet",
    "MobileNet V2 + Basic",
    "MobileNet V2 + DPC",
    "ShuffleNet V2 + Basic (Ours)",
    "ShuffleNet V2 + DPC (Ours)",
]


def test_rows_are_the_papers_in_its_order():
    spec = tables.parse_table(table2.get_config().table)
    assert [r.name for r in spec.rows] == NAMES
    built = {r.name: r.arch.id for r in spec.rows if r.arch is not None}
    assert built == {
        "MobileNet V2 + Basic": preset("deeplabv3_mobilenet_v2_basic").id,
        "MobileNet V2 + DPC": preset("deeplabv3_mobilenet_v2_dpc").id,
        "ShuffleNet V2 + Basic (Ours)": preset("deeplabv3_shufflenet_v2_basic").id,
        "ShuffleNet V2 + DPC (Ours)": preset("deeplabv3_shufflenet_v2_dpc").id,
    }
    paper = {r.name: r.paper for r in spec.rows}
    assert paper["SkipNet-ShuffleNet"] == {"gflops": 2.0, "miou": 55.5}
    assert paper["ENet"] == {"gflops": 3.83}  # the paper's n/a: no value
    assert paper["MobileNet V2 + DPC"] == {"gflops": 5.56}
    assert paper["ShuffleNet V2 + DPC (Ours)"] == {"gflops": 3.05, "miou": 71.3}


@pytest.mark.parametrize("mode", ["", "toy", "smoke"])
def test_the_sweep_trains_exactly_the_built_rows(mode, tmp_path):
    config = table2.get_config(mode)
    search = spec_from_config(config, tmp_path)
    # as the driver builds a grid's archs (nas.search.driver._space_archs)
    trained = [arch_from_params(params_of(a, search.space), search) for a in search.space.grid()]
    rows = [r.arch for r in tables.parse_table(config.table).rows if r.arch is not None]
    assert planned_trials(search) == 4
    assert sorted(a.id for a in trained) == sorted(a.id for a in rows)
    side, classes = {"": (769, 19), "toy": (256, 5), "smoke": (64, 5)}[mode]
    assert {(a.resolution, a.num_classes, a.output_stride) for a in rows} == {
        ((side, side), classes, 16)
    }


def test_the_paper_recipe_in_the_default_mode():
    c = table2.get_config()
    assert c.data.name == "cityscapes/semantic_segmentation"
    assert c.data.preprocess_train.startswith("random_scale(0.5, 2.0, 0.25) | random_crop(769, ")
    t = c.train
    assert (t.optimizer, t.batch_size, t.lr, t.weight_decay, t.power) == (
        "adam",
        16,
        1e-3,
        4e-5,
        0.9,
    )
    assert (t.schedule, t.warmup_steps, t.warmup_lr, t.steps) == ("slow_start", 186, 1e-5, 120_000)


def test_gflops_at_640x360_beside_the_papers():
    spec = tables.parse_table(table2.get_config().table)
    result = tables.compute(spec, None, command="experiments/seed001/table2.py")
    cells = {c[1]: c for c in result.cells}
    g = result.header.index("GFLOPs, segnas")
    m = result.header.index("mIOU (%), segnas")
    printed = {name: cells[name][g] for name in NAMES[2:]}
    # 2 x MACs at 360x640 (a 23 x 40 map at output stride 16), as nas.cost counts them
    assert printed == {
        "MobileNet V2 + Basic": "4.654",
        "MobileNet V2 + DPC": "5.520",
        "ShuffleNet V2 + Basic (Ours)": "2.161",
        "ShuffleNet V2 + DPC (Ours)": "3.029",
    }
    # the paper's Table 2 (its counter sits ~0.8 % above: bias / BN ops)
    paper = {
        "MobileNet V2 + Basic": 4.69,
        "MobileNet V2 + DPC": 5.56,
        "ShuffleNet V2 + Basic (Ours)": 2.18,
        "ShuffleNet V2 + DPC (Ours)": 3.05,
    }
    for name, figure in paper.items():
        assert abs(float(printed[name]) / figure - 1) <= 0.02, name
    assert cells["ENet"][g - 1 : g + 3] == ["3.83", tables.NOT_BUILT, "–", tables.NOT_BUILT]
    assert cells["MobileNet V2 + DPC"][m - 1] == "–"  # the paper's n/a
    assert cells["MobileNet V2 + Basic"][m] == (
        "not run: segnas search --config experiments/seed001/table2.py "
        "--workdir runs/seed001_table2"
    )
    assert "GFLOPs: counted at 360x640 (height x width), each row's arch." in result.notes
