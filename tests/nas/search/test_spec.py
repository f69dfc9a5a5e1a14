"""`config.search` validation (every error branch) and the space <-> Optuna mapping."""

from pathlib import Path

import pytest

from nas.errors import UserError
from nas.search.spec import ablation_archs, arch_from_params, planned_trials, spec_from_config
from nas.space.encoding import decode, distributions, encode, params_of
from nas.space.presets import preset

W = Path("/tmp/unused-workdir")


def spec(config, **search):
    with config.unlocked():
        for k, v in search.items():
            if k in config.search:
                del config.search[k]  # a field may change type (space: dict -> name)
            config.search[k] = v
    return spec_from_config(config, W)


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "strategy",
            "bayes",
            r"search.strategy: got 'bayes'; allowed: random, grid, ablation, "
            r"nsga2, tpe",
        ),
        (
            "objectives",
            ("val/miou", "accuracy"),
            r"search.objectives: got 'accuracy'; allowed: "
            r"val/miou, latency/<target>, params",
        ),
        (
            "objectives",
            ("val/miou", "latency/npu9"),
            r"unknown latency target 'npu9'; allowed: "
            r"litert-cpu, jax-cpu, jax-gpu",
        ),
        (
            "objectives",
            ("val/miou", "latency/litert-cpu"),
            r"search.objectives: latency/litert-cpu "
            r"needs a latency table: set "
            r"search.latency_tables.litert-cpu",
        ),
        ("objectives", (), r"search.objectives: empty"),
        ("objectives", ("params", "params"), r"each at most once"),
        (
            "max_latency_ms",
            {"litert-cpu": 10.0},
            r"search.max_latency_ms: latency/litert-cpu needs "
            r"a latency table",
        ),
        ("max_latency_ms", {"gpu": 10.0}, r"unknown latency target 'gpu'"),
        ("latency_tables", {"tpu-v9": "t.json"}, r"search.latency_tables: unknown target 'tpu-v9'"),
        ("max_params", -5.0, r"search.max_params: got -5.0; allowed: a number > 0"),
        ("num_trials", 0, r"search.num_trials: got 0; allowed: an integer >= 1"),
        (
            "space",
            "tiny",
            r"search.space: got 'tiny'; allowed: a dimension -> values dict or one "
            r"of seed000, seed001, seed002, full",
        ),
        (
            "space",
            {
                "encoder": {"name": ["resnet9"]},
                "decoder": {"name": ["unet"]},
                "resolution": [[64, 64]],
            },
            r"search.space.encoder.name: got 'resnet9'; allowed: mobilenet_v3_large",
        ),
        ("baseline", "no_such_preset", r"search.baseline: got 'no_such_preset'"),
        (
            "baseline",
            "seed000_baseline",
            r"search.baseline: resolution '256x256' is not among "
            r"search.space.resolution values \['32x32', '64x64'\]",
        ),
        ("reference_point", {"latency/x": 1.0}, r"search.reference_point: got 'latency/x'"),
        ("study_name", "", r"search.study_name: got ''"),
    ],
)
def test_bad_search_fields(config, field, value, message):
    with pytest.raises(UserError, match=message):
        spec(config, **{field: value})


def test_no_search_section():
    from ml_collections import ConfigDict

    with pytest.raises(UserError, match=r"config: no `search` section"):
        spec_from_config(ConfigDict({"train": {}}), W)


def test_valid_spec(config):
    s = spec(
        config,
        objectives=("val/miou", "latency/litert-cpu", "bytes"),
        latency_tables={"litert-cpu": ""},
        max_latency_ms={"litert-cpu": 5.0},
        max_params=2e6,
    )
    assert s.directions == ["maximize", "minimize", "minimize"]
    assert s.latency_tables == {"litert-cpu": W / "latency-litert-cpu.json"}
    assert s.constraints == {"latency/litert-cpu": 5.0, "params": 2e6}
    assert planned_trials(s) == 8
    assert s.space.searched() == ["encoder.name", "encoder.width", "decoder.kind", "resolution"]


def test_encode_decode_round_trip(config):
    s = spec(config)
    assert encode("resolution", (64, 96)) == "64x96"
    assert decode("resolution", "64x96") == (64, 96)
    dists = distributions(s.space)
    assert dists["resolution"].choices == ("32x32", "64x64")
    assert dists["encoder.width"].choices == (0.5, 1.0)
    for arch in s.space.grid():
        assert arch_from_params(params_of(arch, s.space), s) == arch


def test_ablation_reproduces_seed000_table1_rows():
    """Seed 000 Table 1: around the final model, conv type 2, width 3, decoder 3 and
    resolution 4 rows, the starred final model shared by all four groups: 1 + 1 + 2 + 2 + 3."""
    import importlib

    table1 = importlib.import_module("experiments.seed000.table1").get_config()
    s = spec_from_config(table1, W)
    archs = ablation_archs(s)
    assert len(archs) == 9 == planned_trials(s)
    assert archs[0] == preset("seed000_final").replace(num_classes=s.space.num_classes)
    assert {a.get("conv.type") for a in archs} == {"depthwise", "group"}
    assert {a.get("encoder.width") for a in archs} == {1.0, 1.5, 2.0}
    assert {a.get("decoder.kind") for a in archs} == {"bilinear", "channel_attention", "mlp"}
    assert {a.resolution for a in archs} == {(256, 256), (384, 384), (512, 512), (640, 640)}
    # One dimension at a time: every row differs from the baseline in at most one field.
    # (a conv type change also shows or hides conv.group_size: compare the shared paths)
    base = archs[0].flatten()
    for a in archs[1:]:
        flat = a.flatten()
        assert sum(flat[k] != v for k, v in base.items() if k in flat) == 1, a


@pytest.mark.parametrize(
    "name, arg, n",
    [("quickstart", None, 12), ("quickstart", "smoke", 3), ("seed000.table1", "smoke", 9)],
)
def test_experiment_configs_are_valid_searches(name, arg, n):
    import importlib

    config = importlib.import_module(f"experiments.{name}").get_config(arg)
    s = spec_from_config(config, W)
    assert planned_trials(s) == n
    assert "arch" not in config  # the driver sets each candidate's arch
    assert s.space.num_classes == (5 if arg == "smoke" and name == "quickstart" else 2)
