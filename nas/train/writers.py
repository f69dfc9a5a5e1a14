"""Where training metrics go: one small interface, three implementations.

A `MetricWriter` takes `write(step, metrics)` (flat dict of floats, keys like `train/loss`,
`val/miou`) and `close()`. The trainer writes through `MultiWriter`, so tests run offline
with the JSON-lines writer alone and the search driver can add its own writer.

- `JsonlWriter`: `WORKDIR/metrics.jsonl`, one JSON object per line with `step` and the
  metrics. When a run resumes from step S, lines after S (written by the interrupted run and
  about to be written again) are dropped, so the file reads like one uninterrupted run.
- `ConsoleWriter`: a tqdm progress bar over the steps with loss and images/s; validation
  results are printed as lines above it.
- `WandbWriter`: a W&B run, offline by default (`WANDB_MODE=offline`; `wandb sync` later),
  its files inside the workdir, the run id kept in `WORKDIR/wandb_run_id` so that a resumed
  run continues the same W&B run. The API key is never read or printed here: wandb finds it
  itself (env or netrc) in online mode.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import ml_collections
from tqdm.auto import tqdm

from nas.errors import UserError
from nas.io import atomic_write
from nas.space.arch import Arch

WANDB_MODES = ("offline", "online", "disabled")


class MetricWriter(Protocol):
    """What the trainer writes metrics to: `write(step, metrics)`, then `close()`."""

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record flat float `metrics` (keys like `train/loss`) at training `step`."""

    def close(self) -> None:
        """Flush and release what the writer holds; no write may follow."""


def _jsonable(v: Any) -> Any:
    v = float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str)) else v
    return None if isinstance(v, float) and not math.isfinite(v) else v


class JsonlWriter:
    """`metrics.jsonl`, one JSON object per step; resuming drops lines after `resume_step`."""

    def __init__(self, path: str | Path, resume_step: int = 0):
        self.path = Path(path)
        if self.path.exists():
            keep = []
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= resume_step:
                        keep.append(line)
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a killed run
            atomic_write(self.path, "".join(line + "\n" for line in keep))
        self._file = open(self.path, "a")

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append one line {"step", **metrics} (non-finite values as null) and flush it."""
        row = {"step": int(step), **{k: _jsonable(v) for k, v in metrics.items()}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()  # a killed run keeps every line written so far

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class ConsoleWriter:
    """A tqdm bar over the steps (loss, images/s), val/* results printed above it."""

    def __init__(self, total_steps: int, start_step: int = 0, desc: str = "train"):
        self._bar = tqdm(
            total=total_steps,
            initial=start_step,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Advance the bar to `step`, show loss and images/s; print val/* (not per-class IoU)."""
        if step > self._bar.n:
            self._bar.update(step - self._bar.n)
        if "train/loss" in metrics:
            post = {"loss": f"{metrics['train/loss']:.4f}"}
            if "train/images_per_s" in metrics:
                post["img/s"] = f"{metrics['train/images_per_s']:.1f}"
            self._bar.set_postfix(post, refresh=False)
        val = {k: v for k, v in metrics.items() if k.startswith("val/") and "/iou/" not in k}
        if val:
            text = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val.items()))
            self._bar.write(f"step {step}: {text}")

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()


class WandbWriter:
    """A W&B run in the workdir; `WORKDIR/wandb_run_id` keeps its id across resumes."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        mode: str,
        project: str,
        entity: str | None,
        group: str | None,
        name: str | None,
        config: Mapping[str, Any],
        tags: Sequence[str] = (),
    ):
        import wandb  # imported here: runs with wandb disabled never pay its import

        workdir = Path(workdir)
        id_file = workdir / "wandb_run_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id)
        # wandb's own processes read the mode from the environment.
        os.environ["WANDB_MODE"] = mode
        self.run = wandb.init(
            project=project,
            entity=entity or None,
            group=group or None,
            name=name or None,
            config=dict(config),
            dir=str(workdir),
            mode=mode,
            id=run_id,
            # offline runs cannot resume (wandb starts a new local run with the same id and
            # `wandb sync` merges them); online ones continue the same run
            resume="allow" if mode == "online" else None,
            tags=list(tags) or None,
            reinit="create_new",
            settings=wandb.Settings(
                console="off", silent=True, x_disable_stats=True, disable_git=True
            ),
        )

    @property
    def run_dir(self) -> Path:
        """The run's folder (`WORKDIR/wandb/offline-run-.../files`'s parent)."""
        return Path(self.run.dir).parent

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log `metrics` at `step` (non-finite values as None)."""
        self.run.log({k: _jsonable(v) for k, v in metrics.items()}, step=int(step))

    def close(self) -> None:
        """Finish the W&B run (offline: its files stay for `wandb sync`)."""
        self.run.finish()


class MultiWriter:
    """Passes every write and close on to each of `writers`, in order."""

    def __init__(self, writers: Sequence[MetricWriter]):
        self.writers = list(writers)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Write `metrics` at `step` to every writer."""
        for w in self.writers:
            w.write(step, metrics)

    def close(self) -> None:
        """Close every writer."""
        for w in self.writers:
            w.close()


def wandb_mode(config: ml_collections.ConfigDict) -> str:
    """`config.wandb.mode`, checked (UserError naming the allowed modes)."""
    mode = config.get("wandb", {}).get("mode", "offline")
    if mode not in WANDB_MODES:
        raise UserError(f"wandb.mode: got {mode!r}; allowed: {', '.join(WANDB_MODES)}")
    return mode


def run_writers(
    config: ml_collections.ConfigDict,
    workdir: Path,
    arch: Arch,
    total_steps: int,
    start_step: int,
    extra: Sequence[MetricWriter] = (),
) -> MultiWriter:
    """A training run's writers: metrics.jsonl, the console (unless `train.progress` is
    False), W&B (unless `wandb.mode` is "disabled"; run name defaults to the arch id, config
    = the whole experiment config plus the arch), then `extra`."""
    writers: list[MetricWriter] = [JsonlWriter(workdir / "metrics.jsonl", start_step)]
    if config.train.get("progress", True):
        writers.append(ConsoleWriter(total_steps, start_step, desc=f"train {arch.id}"))
    mode, w = wandb_mode(config), config.get("wandb", {})
    if mode != "disabled":
        writers.append(
            WandbWriter(
                workdir,
                mode=mode,
                project=w.get("project") or "segnas",
                entity=w.get("entity"),
                group=w.get("group"),
                name=w.get("name") or arch.id,
                config={**config.to_dict(), "arch": arch.to_dict(), "arch_id": arch.id},
                tags=tuple(w.get("tags", ()) or ()),
            )
        )
    return MultiWriter([*writers, *extra])
