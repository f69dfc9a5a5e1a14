"""Trial outcomes and search semantics with the fake evaluator: a hand-written front and
hypervolume, constrained NSGA-II learning a budget, failure and duplicate caps, timeouts."""

import dataclasses
import json

import optuna
import pytest
from optuna.trial import TrialState

from nas.cli.search import split_cores, worker_env
from nas.search import driver as search
from nas.search import prepare
from nas.space.arch import Arch
from nas.train.result import TrainResult
from tests.nas.search.fakes import decoder_of, fake_cost, fake_train, run_sweep

pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning"
)


def read_records(workdir):
    return [json.loads(line) for line in (workdir / "trials.jsonl").read_text().splitlines()]


# Four archs (MobileNetV3-Small, 32 px): width x decoder kind -> a hand-chosen mIoU; the fake
# cost gives params 1e6 * width^2 (+ 50,000 for the MLP decoder).
HAND_MIOU = {(0.5, "bilinear"): 0.5, (0.5, "mlp"): 0.4, (1.0, "bilinear"): 0.7, (1.0, "mlp"): 0.8}


def hand_train(config, workdir, *, arch, on_eval=None):
    miou = HAND_MIOU[(arch.get("encoder.width"), decoder_of(arch))]
    return TrainResult("complete", 6, {"val/miou": miou}, 0.0, "", step_budget=6)


def test_front_and_hypervolume_against_hand_written_values(config, tmp_path):
    config.search.strategy = "grid"
    config.search.num_trials = 0
    config.search.space.encoder.name = ("mobilenet_v3_small",)
    config.search.space.decoder.kind = ("bilinear", "mlp")
    config.search.space.resolution = ((32, 32),)
    run_sweep(config, tmp_path, evaluate=hand_train)
    front = json.loads((tmp_path / "pareto.json").read_text())
    # (0.5, mlp): 300,000 params at 0.4 is dominated by (0.5, bilinear): 250,000 at 0.5.
    assert sorted((m["values"]["params"], m["values"]["val/miou"]) for m in front["pareto"]) == [
        (250_000, 0.5),
        (1_000_000, 0.7),
        (1_050_000, 0.8),
    ]
    # Reference fixed up front: val/miou 0; params 1.1 x the space's largest, 1,050,000.
    assert front["reference_point"] == {"val/miou": 0.0, "params": pytest.approx(1_155_000)}
    # Staircase from the reference: 750,000 x 0.5 + 50,000 x 0.7 + 105,000 x 0.8.
    assert front["hypervolume"] == pytest.approx(375_000 + 35_000 + 84_000)
    history = [h["hypervolume"] for h in front["hypervolume_history"]]
    assert len(history) == 4 and history == sorted(history)
    assert history[-1] == pytest.approx(494_000)


def test_two_seeds_share_one_reference_point(config, tmp_path):
    fronts, archs = [], []
    for seed in (0, 1):
        config.search.seed = seed
        config.search.num_trials = 3
        run_sweep(config, tmp_path / str(seed))
        fronts.append(json.loads((tmp_path / str(seed) / "pareto.json").read_text()))
        archs.append([r["arch_id"] for r in read_records(tmp_path / str(seed))])
    assert archs[0] != archs[1]  # different candidates, so the worst seen differs
    assert fronts[0]["reference_point"] == fronts[1]["reference_point"]
    assert fronts[0]["reference_point"] == {"val/miou": 0.0, "params": pytest.approx(1_155_000)}


def test_constrained_nsga2_learns_a_tight_budget(config, tmp_path):
    config.search.space.encoder.width = (0.35, 0.5, 0.75, 1.0, 1.25)
    config.search.space.resolution = ((32, 32), (64, 64), (96, 96), (128, 128))
    config.search.strategy = "nsga2"
    config.search.population_size = 8
    config.search.num_trials = 48
    config.search.max_params = 350_000.0  # widths 0.35 and 0.5 fit: 2 of 5
    config.fake.step_time = 0.0
    ctx = run_sweep(config, tmp_path, render=False)
    key = "NSGAIISampler:generation"
    share = {}
    for t in ctx.study.trials:  # every proposal, duplicates included (by their arch)
        if key in t.system_attrs:
            broke = fake_cost(Arch.from_dict(t.user_attrs["arch"]))["params"] > 350_000
            share.setdefault(t.system_attrs[key], []).append(broke)
    first, last = share[min(share)], share[max(share)]
    assert len(share) >= 4
    assert sum(first) / len(first) > 0.5 > 0.25 > sum(last) / len(last)
    # The population (COMPLETE trials) holds each arch once.
    population = [
        t.user_attrs["arch_id"] for t in ctx.study.get_trials(states=(TrialState.COMPLETE,))
    ]
    assert len(population) == len(set(population)) == 48


def test_a_space_where_everything_diverges_ends_at_max_failures(config, tmp_path):
    config.search.space.decoder.kind = ("channel_attention",)
    config.fake.diverge_decoder = "channel_attention"
    config.search.max_failures = 3
    logs = []
    ctx = prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)
    assert search.run_worker(ctx, logs.append) == 3
    assert [t.user_attrs["outcome"] for t in logs] == ["diverged"] * 3
    assert ctx.stop_reason.startswith("3 candidates failed (timeout, diverged or failed; ")
    assert ctx.study.user_attrs["stop_reason"] == ctx.stop_reason
    from nas.search import report

    lines = []
    report.render(ctx.study, ctx.spec, tmp_path, winners=False, log=lines.append)
    assert f"the search ended early: {ctx.stop_reason}" in lines


def test_timeout_and_a_short_complete_run_are_never_candidates(config, tmp_path):
    config.fake.timeout_decoder = "mlp"
    config.search.max_failures = 8

    def short(cfg, workdir, *, arch, on_eval=None):
        if decoder_of(arch) == "bilinear":  # says complete but stopped at 4 of 6 steps
            return TrainResult("complete", 4, {"val/miou": 0.9}, 0.0, "", step_budget=6)
        return fake_train(cfg, workdir, arch=arch, on_eval=on_eval)

    run_sweep(config, tmp_path, evaluate=short)
    recs = {r["number"]: r for r in read_records(tmp_path)}
    for r in recs.values():
        kind = r["arch"]["decoder"]["kind"]
        if kind == "mlp":
            assert (r["state"], r["outcome"]) == ("failed", "timeout")
            assert r["reason"] == "stopped by train.max_minutes at step 3 of 6: stopped at step 3"
            assert r["train"]["step"] == 3 and r["train"]["step_budget"] == 6
        elif kind == "bilinear":
            assert r["outcome"] == "failed"
            assert r["reason"] == "the evaluator stopped at step 4 of 6 without saying why"
        else:
            assert r["outcome"] == "complete" and r["train"]["step"] == 6
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert {recs[m["number"]]["outcome"] for m in front["pareto"]} == {"complete"}


def _same_arch_sweep(config, tmp_path, num_trials):
    """A study of 2 trials, then a sampler that proposes the first trial's arch forever."""
    config.search.strategy = "nsga2"
    config.search.num_trials = 2
    first = run_sweep(config, tmp_path, render=False).study.trials[0]
    config.search.num_trials = num_trials
    ctx = prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)
    ctx.study.sampler = optuna.samplers.PartialFixedSampler(
        first.params, optuna.samplers.RandomSampler()
    )
    return ctx, first


def test_a_duplicate_slot_goes_to_a_free_neighbour(config, tmp_path):
    ctx, first = _same_arch_sweep(config, tmp_path, 4)
    n = search.FILL_AFTER
    assert search.run_worker(ctx) == 2 * (n + 1)  # n duplicates, a fill, n duplicates, a fill
    trials = ctx.study.trials[2:]
    assert [t.user_attrs["outcome"] for t in trials] == (["duplicate"] * n + ["complete"]) * 2
    dup = Arch.from_dict(first.user_attrs["arch"]).flatten()
    for fill, of in ((trials[n], trials[n - 1]), (trials[2 * n + 1], trials[2 * n])):
        assert fill.user_attrs["fills_for"] == of.number
        changed = [
            k
            for k, v in Arch.from_dict(fill.user_attrs["arch"]).flatten().items()
            if dup.get(k) != v
        ]
        assert len(changed) == 1  # one dimension away from what the sampler asked for
    assert ctx.stop_reason == ""


def test_duplicates_in_a_row_end_the_search_with_a_reason(config, tmp_path, monkeypatch):
    ctx, _ = _same_arch_sweep(config, tmp_path, 4)
    ctx.spec = dataclasses.replace(ctx.spec, max_duplicates=3)
    monkeypatch.setattr(search, "_fill", lambda ctx, trial: True)  # no free arch is queued
    assert search.run_worker(ctx) == 3
    assert ctx.stop_reason.startswith("the sampler proposed 3 archs in a row that the study ")
    assert [t.user_attrs["outcome"] for t in ctx.study.trials[2:]] == ["duplicate"] * 3


def test_a_space_with_no_free_arch_ends_the_search_with_a_reason(config, tmp_path):
    config.search.space.encoder.name = ("mobilenet_v3_small",)
    config.search.space.decoder.kind = ("bilinear",)
    config.search.space.resolution = ((32, 32),)  # 2 archs (two widths), both evaluated
    ctx, first = _same_arch_sweep(config, tmp_path, 2)
    dup = search.run_trial(ctx, ctx.study.ask())
    assert dup.user_attrs["outcome"] == "duplicate"
    assert search._fill(ctx, dup) is False


def test_tpe_that_converged_gets_fresh_archs(config, tmp_path):
    config.search.strategy = "tpe"
    config.search.startup_trials = 3
    config.search.num_trials = 8
    ctx = run_sweep(config, tmp_path, render=False)
    done = [t for t in ctx.study.trials if t.user_attrs.get("outcome") == "complete"]
    assert len({t.user_attrs["arch_id"] for t in done}) == 8 == len(done)
    assert ctx.stop_reason == ""


def test_workers_split_the_cores():
    assert split_cores([0, 1], 2) == [[0], [1]]
    assert split_cores([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert split_cores([0, 1], 1) == [[0, 1]]
    assert split_cores([0, 1], 3) == [[0], [1], [0]]  # oversubscribed: the CLI warns
    env = worker_env([2, 3])
    assert (env["TF_NUM_INTRAOP_THREADS"], env["OMP_NUM_THREADS"]) == ("2", "2")


def test_workers_compile_with_the_loop_emitters_unless_the_user_chose(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/d")
    assert worker_env([0])["XLA_FLAGS"] == (
        "--xla_dump_to=/tmp/d --xla_cpu_use_fusion_emitters=false"
    )
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true")
    assert worker_env([0])["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
    monkeypatch.delenv("XLA_FLAGS")
    assert worker_env([0])["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=false"


def test_a_resolution_larger_than_the_data_is_refused(tmp_path):
    from experiments.quickstart import get_config
    from nas.errors import UserError

    config = get_config()  # toy_scenes/binary generated at 96 px
    config.search.space.resolution = ((64, 64), (128, 128))
    with pytest.raises(
        UserError,
        match=r"^search.space.resolution: got 128x128, larger than the 96x96 images of data "
        r"'toy_scenes/binary'; allowed: resolutions up to 96x96",
    ):
        prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)
