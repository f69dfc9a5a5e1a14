"""train_and_evaluate on the smoke config: outputs, resume, statuses, early stops, errors."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from nas.errors import UserError
from nas.space.arch import Arch
from nas.train import checkpoint
from nas.train.loop import train_and_evaluate


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class Recorder:
    def __init__(self):
        self.rows: list[tuple[int, dict]] = []
        self.closed = False

    def write(self, step, metrics):
        self.rows.append((step, dict(metrics)))

    def close(self):
        self.closed = True


def test_smoke_run_outputs_and_rerun(smoke: ml_collections.ConfigDict, tmp_path: Path):
    rec = Recorder()
    result = train_and_evaluate(smoke, tmp_path, writer_extra=[rec])
    assert result.status == "complete", result.message
    assert result.step == 8 and result.message == ""
    assert result.step_budget == 8 and result.compile_s > 0 and result.train_s > 0
    # compiling (before the loop, or taken off its clock) is never charged to the run
    assert result.train_s + result.compile_s <= result.wall_time_s
    m = result.metrics
    assert 0.0 <= m["val/miou"] <= 1.0 and math.isfinite(m["train/loss"])
    assert m["train/images_per_s"] > 0 and "train/compile_s" not in m  # last step: steady
    assert {f"val/iou/{n}" for n in ("background", "disk", "square", "triangle", "ring")} <= set(m)

    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, 9))
    assert [r["step"] for r in rows if "val/miou" in r] == [4, 8]
    assert rows[-1]["val/miou"] == pytest.approx(m["val/miou"])
    assert rec.closed and [s for s, r in rec.rows if "val/miou" in r] == [4, 8]

    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "complete" and saved["step"] == 8 and saved["step_budget"] == 8
    assert saved["compile_s"] == result.compile_s and saved["train_s"] == result.train_s
    assert saved["metrics"]["val/miou"] == pytest.approx(m["val/miou"])
    assert sorted(
        int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()
    ) == [4, 6, 8]  # every 2 steps, keep 3
    arch = Arch.from_json((tmp_path / "arch.json").read_text())
    assert arch.num_classes == 5 and arch.resolution == (32, 32)
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 8

    loaded_arch, variables, meta = checkpoint.load_run(tmp_path)
    assert loaded_arch == arch and meta["ema"] is False and meta["elapsed_s"] > 0
    assert set(variables) == {"params", "batch_stats"}
    assert "encoder" in variables["params"] and "decoder" in variables["params"]

    # the same command again: nothing left to train, the final state is scored again
    again = train_and_evaluate(smoke, tmp_path)
    assert again.status == "complete" and again.step == 8
    assert again.metrics["val/miou"] == m["val/miou"]
    assert "train/loss" not in again.metrics
    # the budget of the whole run; its time accumulates over restarts (here: one evaluation)
    assert again.step_budget == 8 and again.compile_s > 0
    assert again.train_s > meta["elapsed_s"]


def test_nan_loss_ends_with_status_diverged(smoke, tmp_path, monkeypatch):
    from data import pipeline

    real = pipeline.train_batches

    def poisoned(*args, start_step=0, **kwargs):  # NaN images from step 3 on
        for step, b in enumerate(real(*args, start_step=start_step, **kwargs), start_step):
            yield {**b, "image": b["image"] * np.nan} if step >= 2 else b

    monkeypatch.setattr(pipeline, "train_batches", poisoned)
    result = train_and_evaluate(smoke, tmp_path)  # no exception escapes
    assert result.status == "diverged" and result.step == 3
    assert result.message == (
        "train/loss is nan (grad norm nan) at step 3: the run diverged; lower train.lr or set "
        "train.grad_clip_norm (last checkpoint: step 2)"
    )
    assert math.isnan(result.metrics["train/loss"]) and "val/miou" not in result.metrics
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "diverged" and saved["metrics"]["train/loss"] is None
    # a non-finite state is never checkpointed
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()] == ["2"]


def test_on_eval_true_stops_early_with_status_complete(smoke, tmp_path):
    seen = []
    result = train_and_evaluate(
        smoke,
        tmp_path / "pruned",
        on_eval=lambda step, m: seen.append((step, m["val/miou"])) or True,
    )
    assert result.status == "complete" and result.step == 4 and result.step_budget == 8
    assert result.message == "stopped by on_eval after step 4"
    assert [s for s, _ in seen] == [4] and seen[0][1] == result.metrics["val/miou"]
    assert (tmp_path / "pruned" / "checkpoints" / "4").is_dir()


def test_max_minutes_stops_with_status_timeout_and_a_resume_finishes(smoke, tmp_path):
    # 1e-6 min = 60 us: the cap is certain to hit after the first step (a step takes ms)
    smoke.train.max_minutes = 1e-6
    capped = train_and_evaluate(smoke, tmp_path)
    assert capped.status == "timeout" and capped.step == 1 and capped.step_budget == 8
    assert capped.message == (
        "stopped by train.max_minutes (1e-06 min of training and evaluation) at step 1 of 8"
    )
    assert "val/miou" in capped.metrics  # how far it got: the final evaluation
    assert capped.train_s > 0 and capped.compile_s > 0
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "timeout" and saved["step"] == 1 and saved["step_budget"] == 8
    assert (tmp_path / "checkpoints" / "1").is_dir()

    smoke.train.max_minutes = 0.0  # no cap: the rerun resumes at step 1 and finishes
    resumed = train_and_evaluate(smoke, tmp_path)
    assert resumed.status == "complete" and resumed.message == ""
    assert resumed.step == 8 and resumed.step_budget == 8 and resumed.compile_s > 0
    assert resumed.train_s > capped.train_s  # accumulated over the restart
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, 9))


def test_compile_time_is_not_charged(smoke, tmp_path, monkeypatch):
    """Every compile is made 1.5 s slower: the clock that train.max_minutes reads
    (train/elapsed_s) must not see it. The bound below holds however loaded the machine is:
    it compares the loop clock with wall-clock marks taken around it, not with a guess."""
    import nas.train.loop as loop

    delay = 1.5
    compiled_at: list[float] = []  # when each compile (sleep included) returned

    class SlowCompile:
        def __init__(self, lowered):
            self.lowered = lowered

        def compile(self, **kwargs):
            out = self.lowered.compile(**kwargs)
            time.sleep(delay)
            compiled_at.append(time.time())
            return out

    class SlowLower:
        def __init__(self, jitted):
            self.jitted = jitted

        def lower(self, *args):
            return SlowCompile(self.jitted.lower(*args))

    real = loop.jit_steps
    monkeypatch.setattr(loop, "jit_steps", lambda *a: tuple(map(SlowLower, real(*a))))
    at: dict[tuple[int, str], float] = {}  # (step, "train" | "val") -> when it was written

    class Clock(Recorder):
        def write(self, step, metrics):
            at[step, "val" if "val/miou" in metrics else "train"] = time.time()
            super().write(step, metrics)

    clock = Clock()
    result = train_and_evaluate(smoke, tmp_path, writer_extra=[clock])
    assert result.status == "complete" and result.compile_s >= 2 * delay
    assert len(compiled_at) == 2  # the train step (before the loop), the eval step (in it)
    elapsed_4 = next(m["train/elapsed_s"] for s, m in clock.rows if s == 4 and "val/miou" in m)
    # The loop clock starts after the train step's compile returned (compiled_at[0]) and is
    # read before the step-4 evaluation is written (at[4, "val"]); the eval step's compile
    # (>= delay) happened in between and is taken off. Charged, it would exceed the bound by
    # about `delay`.
    assert 0 < elapsed_4 <= at[4, "val"] - compiled_at[0] - delay
    assert result.train_s + result.compile_s <= result.wall_time_s


def test_exception_during_training_ends_with_status_failed(smoke, tmp_path, monkeypatch):
    from data import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
        yield

    monkeypatch.setattr(pipeline, "train_batches", broken)
    result = train_and_evaluate(smoke, tmp_path)
    assert result.status == "failed" and result.step == 0
    assert result.message == "RuntimeError: disk on fire"
    assert "disk on fire" in (tmp_path / "error.log").read_text()
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda c: c.__delitem__("arch") or setattr(c, "arch", "no_such_preset"),
            "config.arch: got 'no_such_preset'",
        ),
        (lambda c: c.arch.encoder.update(width=9.0), r"config.arch: encoder.width: got 9.0"),
        (
            lambda c: (
                setattr(c.arch, "decoder", {"name": "lraspp"})
                or c.train.loss.update(aux_weight=0.4)
            ),
            "train.loss.aux_weight: got 0.4; allowed: 0 for decoder 'lraspp'",
        ),
        (lambda c: c.wandb.update(mode="cloud"), "wandb.mode: got 'cloud'"),
        (lambda c: c.train.update(batch_size=0), "train.batch_size: got 0"),
        (lambda c: c.train.update(steps=0), "train.steps: got 0"),
        (lambda c: c.train.update(ema=1.0), r"train.ema: got 1.0; allowed: a decay in \[0, 1\)"),
        (lambda c: c.train.update(max_minutes=-1.0), "train.max_minutes: got -1.0"),
        (
            lambda c: c.train.update(eval_protocol="input"),
            "train.eval_protocol: got 'input'; allowed: 'label' .* or 'output'",
        ),
        (
            lambda c: c.train.update(bn_momentum=1.0),
            r"train.bn_momentum: got 1.0; allowed: a momentum in \(0, 1\)",
        ),
        (lambda c: c.train.update(checkpoint_every=0), "train.checkpoint_every: got 0"),
        (
            lambda c: c.train.update(checkpoint_minutes=-1.0),
            r"train.checkpoint_minutes: got -1.0; allowed: minutes >= 0",
        ),
        (lambda c: c.train.update(optimizer="lamb"), "train.optimizer: got 'lamb'"),
        (lambda c: c.train.loss.update(ce=0.0), "train.loss: all weights are 0"),
    ],
)
def test_bad_config_raises_user_error_before_training(smoke, tmp_path, change, match):
    change(smoke)
    with pytest.raises(UserError, match=match):
        train_and_evaluate(smoke, tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_a_workdir_of_another_arch_is_refused(smoke, tmp_path):
    (tmp_path / "arch.json").write_text(
        Arch.from_dict(
            dict(encoder="mobilenet_v3_large", decoder="mlp", resolution=(32, 32), num_classes=5)
        ).to_json()
    )
    with pytest.raises(UserError, match="holds a run of another arch"):
        train_and_evaluate(smoke, tmp_path)


def test_video_datasets_are_refused(smoke, tmp_path):
    from data.pipeline import default_data_config

    smoke.data = default_data_config("toy_scenes/video")
    smoke.data.data_dir = "/nonexistent-not-used"
    smoke.data.builder_kwargs.update(
        train_size=4, validation_size=2, test_size=2, height=32, width=32, num_frames=2
    )
    smoke.data.data_dir = str(tmp_path / "tfds")
    with pytest.raises(UserError, match="a video dataset; allowed: an image dataset"):
        train_and_evaluate(smoke, tmp_path / "run")


def test_load_run_errors(tmp_path):
    with pytest.raises(UserError, match="has no checkpoints/ folder"):
        checkpoint.load_run(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(UserError, match="no checkpoint in"):
        checkpoint.load_run(tmp_path)


def test_checkpoints_by_time_as_well_as_by_steps(smoke, tmp_path, monkeypatch):
    """A kill must lose at most train.checkpoint_minutes of training, whatever
    checkpoint_every says (here larger than the run)."""
    import nas.train.loop as loop

    saved: list[int] = []
    real = loop.checkpoint.save

    def record(mngr, step, *a, **k):
        saved.append(step)
        return real(mngr, step, *a, **k)

    monkeypatch.setattr(loop.checkpoint, "save", record)
    smoke.train.checkpoint_every = 1000
    smoke.train.checkpoint_minutes = 1e-9  # due after every step
    assert train_and_evaluate(smoke, tmp_path / "a").status == "complete"
    assert saved == list(range(1, 9))
    saved.clear()
    smoke.train.checkpoint_minutes = 0.0  # off: only the end
    assert train_and_evaluate(smoke, tmp_path / "b").status == "complete"
    assert saved == [8]
