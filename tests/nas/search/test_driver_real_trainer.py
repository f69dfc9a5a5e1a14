"""The driver with the real trainer (nas.train) and exporter on the quickstart's smoke config:
a candidate whose loss turns NaN is recorded as failed and the sweep goes on; the surviving
Pareto member is exported to .tflite with its parity report."""

import json

import pytest

from nas.search import driver as search
from nas.search import prepare, report
from nas.space.arch import Arch
from nas.train.loop import train_and_evaluate


@pytest.mark.slow
def test_nan_candidate_fails_the_sweep_goes_on_and_the_winner_exports(tmp_path):
    from experiments.quickstart import get_config

    config = get_config("smoke")
    config.wandb.mode = "disabled"
    config.search.objectives = ("val/miou", "params")  # no latency table to build
    config.search.num_trials = 2
    config.search.winners.max_count = 1
    diverging = []

    def evaluate(cfg, workdir, *, arch, on_eval=None):
        if not diverging:  # the first candidate: Adam steps of 1e9, the loss is soon NaN
            diverging.append(arch.id)
            cfg.train.lr = 1e9
        return train_and_evaluate(cfg, workdir, arch=arch, on_eval=on_eval)

    ctx = prepare.prepare(config, tmp_path, evaluate=evaluate)
    assert search.run_worker(ctx) == 2
    out = report.render(ctx.study, ctx.spec, ctx.workdir, log=lambda *a: None)
    recs = {
        r["arch_id"]: r
        for r in map(json.loads, (tmp_path / "trials.jsonl").read_text().splitlines())
    }
    bad = recs.pop(diverging[0])
    assert (bad["state"], bad["outcome"], bad["train"]["status"]) == (
        "failed",
        "diverged",
        "diverged",
    )
    assert bad["reason"].startswith(f"diverged at step {bad['train']['step']} of 4: train/loss is ")
    (good,) = recs.values()
    assert good["state"] == "complete" and 0.0 <= good["metrics"]["val/miou"] <= 1.0
    assert good["values"] == [good["metrics"]["val/miou"], good["costs"]["params"]]
    # The only feasible complete candidate is the front; it is exported with parity passed.
    (winner,) = out["winners"]
    assert winner["arch_id"] == good["arch_id"] and "error" not in winner
    saved = json.loads((tmp_path / "winners" / f"{good['arch_id']}.json").read_text())
    assert saved["parity"]["passed"] is True and saved["parity"]["max_abs_diff"] <= 1e-4
    assert (tmp_path / "winners" / f"{good['arch_id']}.tflite").stat().st_size == saved["bytes"]


@pytest.mark.slow
@pytest.mark.latency_protocol
def test_real_search_with_a_latency_objective_and_budget(tmp_path):
    """Real trainer, real latency table (measured here for the smoke space), a latency
    objective and a budget between the fastest and slowest candidate's predicted latency."""
    from experiments.quickstart import get_config
    from nas.latency import predict

    config = get_config("smoke")
    config.wandb.mode = "disabled"
    config.search.num_trials = 4  # the whole smoke space: 2 widths x 2 decoder kinds
    config.search.strategy = "grid"
    ctx = prepare.prepare(config, tmp_path)  # builds WORKDIR/latency-litert-cpu.json
    table = ctx.tables["litert-cpu"]
    archs = [search.arch_from_params(p, ctx.spec) for p in _grid_params(ctx.spec)]
    predicted = sorted(predict(a, table) for a in archs)
    assert len(predicted) == 4 and predicted[0] < predicted[-1]
    budget = (predicted[1] + predicted[2]) / 2  # two candidates fit, two do not
    # every calibration model (here the whole space) is predicted out of fold
    cal = table.calibration
    assert cal["n"] == 4 and cal["heldout"]["n"] == 4 and len(cal["folds"]) == 4
    config.search.max_latency_ms = {"litert-cpu": budget}
    config.search.winners.max_count = 1
    ctx = prepare.prepare(config, tmp_path)  # the table is reused, the budget is new
    assert search.run_worker(ctx) == 4
    lines: list[str] = []
    out = report.render(ctx.study, ctx.spec, ctx.workdir, log=lines.append)
    recs = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    outcomes = sorted(r["outcome"] for r in recs)
    assert outcomes == ["complete", "complete", "infeasible", "infeasible"]
    for r in recs:
        ms = r["latency_ms"]["litert-cpu"]
        assert ms == pytest.approx(predict(Arch.from_dict(r["arch"]), table))
        if r["outcome"] == "infeasible":
            assert ms > budget and r["values"] is None and r["train"] is None
            assert not (tmp_path / "trials" / r["arch_id"]).exists()
        else:  # trained to the full step budget of the smoke config
            assert ms <= budget and r["train"]["step"] == r["train"]["step_budget"] == 4
            assert r["values"] == [r["metrics"]["val/miou"], ms]
            assert r["train"]["compile_s"] > 0 and r["train"]["train_s"] > 0
    front = json.loads((tmp_path / "pareto.json").read_text())
    assert front["reference_point"] == {"val/miou": 0.0, "latency/litert-cpu": budget}
    # the winner's report: the search's prediction beside the exported file's measurement
    (winner,) = out["winners"]
    rec = next(r for r in recs if r["arch_id"] == winner["arch_id"])
    lat = json.loads((tmp_path / "winners" / f"{winner['arch_id']}.json").read_text())["latency"]
    assert lat["predicted_ms"] == round(rec["latency_ms"]["litert-cpu"], 4)
    assert lat["measured_ms"] > 0 and lat["clock"] == "thread-cpu"
    assert lat["companions"] == 3 and lat["companion_sets"] == 5  # the other 3 archs, 5 draws
    assert lat["scaled_by"] == "calibration models"  # the table's, timed beside it
    # (the report rounds predicted_ms to 4 decimals, error_pct is from the unrounded one)
    assert lat["error_pct"] == pytest.approx(
        100 * (lat["predicted_ms"] / lat["measured_ms"] - 1), abs=0.05
    )
    assert out["predictor_error"]["n"] == 1
    assert any(x.startswith("latency predictor on the 1 winner(s): median |error| ") for x in lines)
    assert {m["arch_id"] for m in front["pareto"]} <= {
        r["arch_id"] for r in recs if r["outcome"] == "complete"
    }


def _grid_params(spec):
    from nas.space.encoding import params_of

    return [params_of(a, spec.space) for a in spec.space.grid()]
