"""The driver with the real trainer (nas.train) and exporter on the quickstart's smoke config:
a candidate whose loss turns NaN is recorded as failed and the sweep goes on; the surviving
Pareto member is exported to .tflite with its parity report."""

import json

import pytest

from nas.search import driver as search
from nas.search import prepare, report
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
    assert bad["reason"].startswith(f"diverged at step {bad['train']['step']}: train/loss is ")
    (good,) = recs.values()
    assert good["state"] == "complete" and 0.0 <= good["metrics"]["val/miou"] <= 1.0
    assert good["values"] == [good["metrics"]["val/miou"], good["costs"]["params"]]
    # The only feasible complete candidate is the front; it is exported with parity passed.
    (winner,) = out["winners"]
    assert winner["arch_id"] == good["arch_id"] and "error" not in winner
    saved = json.loads((tmp_path / "winners" / f"{good['arch_id']}.json").read_text())
    assert saved["parity"]["passed"] is True and saved["parity"]["max_abs_diff"] <= 1e-4
    assert (tmp_path / "winners" / f"{good['arch_id']}.tflite").stat().st_size == saved["bytes"]
