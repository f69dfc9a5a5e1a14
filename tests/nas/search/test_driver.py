"""The driver with a fake evaluator: strategies, outcomes, resumption, dead workers, reuse."""

import json
import os
import subprocess
import time

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas.errors import UserError
from nas.search import driver as search
from nas.search import front as pareto
from nas.search import prepare, records, strategies
from nas.search import storage as st
from nas.search import workers as wk
from nas.space.arch import Arch
from tests.nas.search.fakes import fake_cost, fake_miou, fake_train, run_sweep

# Tests call study.ask() by hand, outside the driver that silences this.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning"
)


def read_records(workdir):
    return [json.loads(line) for line in (workdir / "trials.jsonl").read_text().splitlines()]


def steps_logged(workdir, arch_id):
    return (workdir / "trials" / arch_id / "steps.log").read_text().split()


def test_random_sweep_records_every_trial_with_exact_values(config, tmp_path):
    ctx = run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    assert [r["number"] for r in recs] == list(range(8))
    assert {r["state"] for r in recs} == {"complete"} and len({r["arch_id"] for r in recs}) == 8
    for r in recs:
        arch = Arch.from_dict(r["arch"])
        assert arch.id == r["arch_id"]
        assert r["values"] == [fake_miou(arch), fake_cost(arch)["params"]]
        assert r["costs"] == {
            "params": fake_cost(arch)["params"],
            "macs": fake_cost(arch)["macs"],
            "bytes": fake_cost(arch)["bytes_fp32"],
        }
        assert r["feasible"] is True and r["reason"] == "" and r["outcome"] == "complete"
        assert r["train"] == {
            "status": "complete",
            "step": 6,
            "step_budget": 6,
            "compile_s": 0.5,
            "train_s": pytest.approx(0.12),
            "wall_time_s": 0.0,
            "message": "",
        }
        assert steps_logged(tmp_path, r["arch_id"]) == ["1", "2", "3", "4", "5", "6"]
    # pareto.json holds exactly the hand-checked non-dominated set of the records.
    pts = np.array([r["values"] for r in recs])
    expected = {recs[i]["number"] for i in np.flatnonzero(pareto.non_dominated(pts, [True, False]))}
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert {m["number"] for m in front["pareto"]} == expected
    # Fixed before the first trial: 1.1 x the largest params of the 24-arch space (the fake
    # cost: 1,000,000 for width 1.0, + 50,000 for the MLP decoder), whatever was sampled.
    ref = [0.0, 1_155_000.0]
    assert front["reference_point"] == {"val/miou": 0.0, "params": pytest.approx(ref[1])}
    assert front["reference_fixed"] is True
    assert front["hypervolume"] == pytest.approx(pareto.hypervolume(pts, [True, False], ref))
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    assert (tmp_path / "pareto.html").stat().st_size > 1_000_000
    # Random sampling is without replacement and reproducible from search.seed.
    assert [a.id for a in strategies.listed_archs(ctx.spec)] == [r["arch_id"] for r in recs]


def test_rerun_continues_the_study_and_never_retrains(config, tmp_path):
    config.search.num_trials = 4
    run_sweep(config, tmp_path, render=False)
    first = read_records(tmp_path) if (tmp_path / "trials.jsonl").exists() else None
    assert first is None  # render=False: nothing written yet, the study is the memory
    config.search.num_trials = 6
    ctx = run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    assert len(recs) == 6 and len({r["arch_id"] for r in recs}) == 6
    for r in recs:  # every architecture trained exactly once, step by step
        assert steps_logged(tmp_path, r["arch_id"]) == ["1", "2", "3", "4", "5", "6"]
    # A third run with the same budget has nothing left to do.
    assert search.run_worker(ctx) == 0


def test_failed_candidates_are_recorded_and_the_sweep_goes_on(config, tmp_path):
    config.fake.diverge_decoder = "channel_attention"
    config.fake.raise_decoder = "mlp"
    run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    assert len(recs) == 8
    by_decoder = {}
    for r in recs:
        by_decoder.setdefault(r["arch"]["decoder"]["kind"], []).append(r)
    for r in by_decoder["channel_attention"]:
        assert (r["state"], r["outcome"]) == ("failed", "diverged")
        assert r["reason"] == "diverged at step 1 of 6: loss is nan"
    for r in by_decoder["mlp"]:
        assert (r["state"], r["outcome"]) == ("failed", "failed")
        assert r["reason"].startswith("exception: RuntimeError: fake failure in mlp")
        assert "Traceback" in (tmp_path / r["trial_dir"] / "error.txt").read_text()
    assert all(r["state"] == "complete" for r in by_decoder["bilinear"])


def test_constraint_violators_are_not_trained(config, tmp_path):
    config.search.strategy = "nsga2"
    config.search.population_size = 4
    config.search.num_trials = 6
    config.search.max_params = 500_000.0  # width 1.0 has 1M params in the fake cost
    ctx = run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    infeasible = [r for r in recs if r["outcome"] == "infeasible"]
    assert infeasible, "the seed should propose some width-1.0 candidates"
    for r in infeasible:
        # Told COMPLETE (so NSGA-II's population has it), its placeholder values kept out.
        assert (r["state"], r["feasible"], r["values"]) == ("complete", False, None)
        assert r["arch"]["encoder"]["width"] == 1.0 and "val/miou" not in r["metrics"]
        assert r["reason"] == f"params {r['costs']['params']:,.0f} > 500,000"
        assert not (tmp_path / "trials" / r["arch_id"]).exists()  # never trained
    for r in recs:
        if r["outcome"] == "complete":
            assert r["arch"]["encoder"]["width"] == 0.5 and r["feasible"] is True
    # NSGA-II saw the constraint values (Optuna's convention: <= 0 is feasible) and, for
    # infeasible trials, the placeholder values val/miou 0 and their params.
    for t in ctx.study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.constraints == {"params": t.user_attrs["costs"]["params"] - 5e5}
        if t.user_attrs["outcome"] == "infeasible":
            assert t.values == [0.0, t.user_attrs["costs"]["params"]]
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert front["reference_point"]["params"] == 500_000.0  # the budget bounds the hypervolume
    assert {m["number"] for m in front["pareto"]} <= {
        r["number"] for r in recs if r["outcome"] == "complete"
    }


def test_grid_covers_the_full_factorial_once(config, tmp_path):
    config.search.strategy = "grid"
    config.search.num_trials = 0
    config.search.space.encoder.width = (0.5,)
    config.search.space.resolution = [[32, 32]]
    ctx = run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    assert sorted(r["arch_id"] for r in recs) == sorted(a.id for a in ctx.spec.space.grid())
    assert len(recs) == 6 and {r["state"] for r in recs} == {"complete"}


def test_ablation_table_groups_rows_by_dimension(config, tmp_path):
    config.search.strategy = "ablation"
    config.search.num_trials = 0
    ctx = run_sweep(config, tmp_path)
    base = ctx.spec.baseline
    expected = [base] + [
        a
        for d in ("encoder.name", "encoder.width", "decoder.kind", "resolution")
        for a in base.neighbours(ctx.spec.space, d)
    ]
    assert [r["arch_id"] for r in read_records(tmp_path)] == [a.id for a in expected]
    table = records.summary_table(ctx.study, ctx.spec).splitlines()
    groups = [line for line in table if line.startswith("-- ")]
    assert groups == ["-- encoder.name", "-- encoder.width", "-- decoder.kind", "-- resolution"]
    assert sum(" *" in line for line in table) == 4  # the baseline starred in every group
    assert len(table) == 1 + 4 + (2 + 3 + 2 + 2)  # head, group lines, values per dimension


def test_tpe_runs_multi_objective(config, tmp_path):
    config.search.strategy = "tpe"
    config.search.startup_trials = 3
    config.search.num_trials = 5
    run_sweep(config, tmp_path)
    recs = read_records(tmp_path)
    fresh = [r for r in recs if r["reused_from"] is None]
    assert len({r["arch_id"] for r in fresh}) == 5 == len(fresh)


def test_median_rule_prunes_candidates_below_the_median(config, tmp_path):
    config.search.prune.enabled = True
    config.search.prune.min_trials = 2
    config.search.prune.warmup_steps = 2
    config.search.seed = 1  # its first candidates are strong: later ones fall below them
    ctx = run_sweep(config, tmp_path)
    pruned = [t for t in ctx.study.trials if t.state == TrialState.PRUNED]
    # the fake mIoU hashes the arch id, so this count follows the ids of schema-2 archs
    assert len(pruned) == 4
    for t in pruned:
        step = int(t.user_attrs["reason"].split("pruned at step ")[1].split(":")[0])
        mine = t.user_attrs["curve"][str(step)]
        earlier = [
            o.user_attrs["curve"][str(step)]
            for o in ctx.study.trials
            if o.state == TrialState.COMPLETE and o.number < t.number
        ]
        assert len(earlier) >= 2 and mine < float(np.median(earlier))
        assert t.user_attrs["train"]["step"] == step < 6
        # The candidate's checkpoint stopped where it was pruned.
        assert steps_logged(tmp_path, t.user_attrs["arch_id"])[-1] == str(step)


def _dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_trial_of_a_dead_worker_is_retried_and_resumes(config, tmp_path):
    ctx = prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)
    trial = ctx.study.ask()  # pops the first listed candidate
    arch_id = trial.user_attrs["arch_id"]
    trial.set_user_attr("worker", {"host": wk.worker_id()["host"], "pid": _dead_pid()})
    # The dead worker had trained 3 steps and checkpointed them.
    (tmp_path / "trials" / arch_id).mkdir(parents=True)
    (tmp_path / "trials" / arch_id / "ckpt.json").write_text('{"step": 3}')
    (tmp_path / "trials" / arch_id / "steps.log").write_text("1\n2\n3\n")
    assert search.run_worker(ctx) == 8
    recs = records.records(ctx.study)
    assert recs[0]["outcome"] == "killed" and recs[0]["state"] == "failed"
    retry = [r for r in recs if r["retry_of"] == 0]
    assert recs[0]["reason"] == f"its worker died; retried as trial {retry[0]['number']}"
    assert len(retry) == 1 and retry[0]["arch_id"] == arch_id and retry[0]["state"] == "complete"
    assert steps_logged(tmp_path, arch_id) == ["1", "2", "3", "4", "5", "6"]  # resumed at 4
    assert len({r["arch_id"] for r in recs}) == 8


def test_heartbeat_stale_trial_of_another_host_is_retried(config, tmp_path):
    config.search.heartbeat_interval = 1
    config.search.grace_period = 1
    ctx = prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)
    trial = ctx.study.ask()
    trial.set_user_attr("worker", {"host": "another-machine", "pid": 1})
    ctx.study._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.5)
    assert wk.reap_dead_workers(ctx.study) == [trial.number]
    waiting = ctx.study.get_trials(states=(TrialState.WAITING,))
    assert [
        t.system_attrs["failed_trial"] for t in waiting if "failed_trial" in t.system_attrs
    ] == [trial.number]


def test_interrupt_hands_the_trial_back(config, tmp_path):
    calls = []

    def interrupted(cfg, workdir, *, arch, on_eval=None):
        calls.append(arch.id)
        raise KeyboardInterrupt

    ctx = prepare.prepare(config, tmp_path, evaluate=interrupted, cost_fn=fake_cost)
    with pytest.raises(KeyboardInterrupt):
        search.run_worker(ctx)
    t = ctx.study.trials[0]
    assert t.state == TrialState.FAIL
    ctx = run_sweep(config, tmp_path)  # the next run trains it
    recs = records.records(ctx.study)
    assert recs[0]["outcome"] == "killed"
    assert len([r for r in recs if r["state"] == "complete"]) == 8
    assert calls[0] in {r["arch_id"] for r in recs if r["state"] == "complete"}


def test_an_architecture_proposed_again_is_a_duplicate_outside_the_population(config, tmp_path):
    config.search.strategy = "nsga2"
    config.search.num_trials = 3
    ctx = run_sweep(config, tmp_path, render=False)
    first = ctx.study.trials[0]
    steps_before = steps_logged(tmp_path, first.user_attrs["arch_id"])
    ctx.study.sampler = optuna.samplers.PartialFixedSampler(
        first.params, optuna.samplers.RandomSampler()
    )
    again = search.run_trial(ctx, ctx.study.ask())
    assert again.state == TrialState.FAIL and again.values is None  # not in the population
    assert again.user_attrs["outcome"] == "duplicate"
    assert again.user_attrs["reused_from"] == first.number
    assert again.user_attrs["reason"] == f"arch of trial {first.number} (complete)"
    assert steps_logged(tmp_path, first.user_attrs["arch_id"]) == steps_before
    # It does not count toward num_trials: the sweep still has no free slot, and a re-run
    # with one more trial trains exactly one new arch.
    population = ctx.study.get_trials(states=(TrialState.COMPLETE,))
    assert len({t.user_attrs["arch_id"] for t in population}) == len(population) == 3


def test_a_study_with_other_objectives_is_refused(config, tmp_path):
    config.search.num_trials = 1
    run_sweep(config, tmp_path, render=False)
    config.search.objectives = ("val/miou", "bytes")
    with pytest.raises(
        UserError,
        match=r"study 'fake' in this storage was created with "
        r"another objectives",
    ):
        prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)


def test_unwritable_workdir_and_unreachable_storage(config, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match=r"workdir: cannot write .*file/sub"):
        prepare.prepare(config, blocker / "sub", evaluate=fake_train)
    with pytest.raises(UserError, match=r"storage: cannot open 'sqlite:////nonexistent-dir/x.db'"):
        prepare.prepare(
            config, tmp_path / "w", storage="sqlite:////nonexistent-dir/x.db", evaluate=fake_train
        )
    assert not os.path.exists("/nonexistent-dir")


def test_a_trial_whose_worker_died_before_recording_itself_is_reaped(config, tmp_path, monkeypatch):
    """Killed between `ask` and recording its worker: no pid to check, no heartbeat. After
    wk.ORPHAN_SECONDS it is failed (a killed trial: it holds no slot) and the queued arch it
    had popped is queued again."""
    ctx = prepare.prepare(config, tmp_path, evaluate=fake_train, cost_fn=fake_cost)

    def waiting():
        return [
            t.system_attrs["fixed_params"]
            for t in ctx.study.get_trials(deepcopy=False)
            if t.state == TrialState.WAITING
        ]

    orphan = ctx.study.ask()  # pops a queued arch; its "worker" is never recorded
    popped = ctx.study.get_trials(deepcopy=False)[orphan.number].system_attrs["fixed_params"]
    queue = waiting()
    assert wk.reap_dead_workers(ctx.study) == []  # young: its asker may be starting it
    monkeypatch.setattr(wk, "ORPHAN_SECONDS", 0.0)
    assert wk.reap_dead_workers(ctx.study) == [orphan.number]
    trials = ctx.study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    assert waiting() == [*queue, popped]  # queued again, last
    assert orphan.number not in {t.number for t in st.counted_trials(trials)}
