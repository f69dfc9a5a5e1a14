"""The W&B summary run of a search, offline: its tables hold every trial, the front and the
hypervolume over trials (read back from the run's files)."""

import json

from nas.search import report
from tests.nas.search.fakes import run_sweep


def _table(run_dir, key):
    (path,) = (run_dir / "files" / "media" / "table").glob(f"{key}_*.table.json")
    return json.loads(path.read_text())


def test_summary_run_offline(config, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    ctx = run_sweep(config, tmp_path, render=False)
    config.wandb.mode = "offline"
    lines = []
    out = report.render(
        ctx.study, ctx.spec, ctx.workdir, winners=False, wandb_cfg=config.wandb, log=lines.append
    )
    run_dir = tmp_path / "wandb" / out["wandb_dir"].split("/wandb/")[1]
    assert run_dir.name.startswith("offline-run-") and run_dir.is_dir()
    trials = _table(run_dir, "trials")
    assert trials["columns"][:8] == [
        "trial",
        "state",
        "outcome",
        "arch_id",
        "arch",
        "feasible",
        "pareto",
        "val/miou",
    ]
    assert len(trials["data"]) == 8
    front = {m["number"] for m in out["front"]["pareto"]}
    assert {row[0] for row in trials["data"] if row[6]} == front
    assert sorted(r[2] for r in _table(run_dir, "pareto_front")["data"]) == sorted(front)
    hv = _table(run_dir, "hypervolume_over_trials")["data"]
    assert [h[1] for h in hv] == [h["hypervolume"] for h in out["front"]["hypervolume_history"]]
    assert hv[-1][1] == out["front"]["hypervolume"]
    # Disabled mode: no run, no folder.
    config.wandb.mode = "disabled"
    assert (
        report.log_wandb_summary(ctx.study, ctx.spec, out["front"], tmp_path / "x", config.wandb)
        is None
    )
