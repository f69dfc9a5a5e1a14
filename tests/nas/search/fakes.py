"""Fakes for the search driver's tests: a trainer-shaped evaluator, a cost function, and an
in-process sweep with them (`run_sweep`).

`fake_train` has the trainer's signature and behaviour that matters to the driver: it keeps a
step checkpoint in its workdir (a re-run resumes from it), logs every step it trains to
`steps.log` (so tests can prove no step is trained twice), calls `on_eval` every `eval_every`
steps and stops when told to, and diverges or raises for chosen decoders. Its mIoU is a fixed
function of the arch id, so tests know every value in advance.

`fake.gate` (a file path) makes the sweep's progress the test's to give: before each step the
evaluator waits until the file holds a number larger than the steps logged so far by the whole
sweep. A process test releases k steps, waits until they are logged, and kills or interrupts
the command then: mid-sweep, however slow or loaded the machine is.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from nas.search import driver, prepare, report
from nas.space.arch import Arch
from nas.train.result import TrainResult


def fake_miou(arch: Arch) -> float:
    return round(0.3 + 0.6 * int(arch.id[:4], 16) / 0xFFFF, 6)


def decoder_of(arch: Arch) -> str:
    """The decoder's kind for a U-Net, else its name (what the fake config's knobs name)."""
    return arch.decoder.knobs().get("kind", arch.decoder.name)


def fake_cost(arch: Arch) -> dict:
    h, w = arch.resolution
    mlp = decoder_of(arch) == "mlp"
    params = int(1_000_000 * arch.get("encoder.width") ** 2) + (50_000 if mlp else 0)
    macs = params * h * w // 64
    return {"params": params, "macs": macs, "bytes_fp32": 4 * params}


def sweep_steps_logged(sweep: Path) -> int:
    """Steps logged by every candidate of the sweep whose workdir is `sweep`."""
    return sum(len(f.read_text().split()) for f in sweep.glob("trials/*/steps.log"))


def wait_for_gate(gate: str, sweep: Path) -> None:
    """Blocks until the gate file allows one more step (see the module docstring)."""
    while True:
        try:
            allowed = int(Path(gate).read_text().strip() or 0)
        except (OSError, ValueError):
            allowed = 0
        if sweep_steps_logged(sweep) < allowed:
            return
        time.sleep(0.01)


def fake_train(config, workdir, *, arch: Arch, on_eval=None) -> TrainResult:
    f = config.fake
    workdir = Path(workdir)
    ckpt = workdir / "ckpt.json"
    step = json.loads(ckpt.read_text())["step"] if ckpt.exists() else 0
    if decoder_of(arch) == f.raise_decoder:
        raise RuntimeError(f"fake failure in {decoder_of(arch)}")
    steps = config.train.steps
    target = fake_miou(arch)
    if decoder_of(arch) == f.get("timeout_decoder", ""):  # the wall-clock cap hit at step 3
        return TrainResult(
            "timeout", 3, {"val/miou": target}, 0.0, "stopped at step 3", step_budget=steps
        )
    with open(workdir / "steps.log", "a") as log:
        while step < steps:
            if f.get("gate", ""):
                wait_for_gate(f.gate, workdir.parent.parent)  # WORKDIR/trials/<arch id>
            time.sleep(f.step_time)
            if decoder_of(arch) == f.diverge_decoder and step >= 1:
                return TrainResult(
                    "diverged", step, {"train/loss": math.nan}, 0.0, "loss is nan", steps
                )
            step += 1
            # checkpoint first, then log: a kill in between loses a log line, never repeats one
            tmp = workdir / "ckpt.json.tmp"
            tmp.write_text(json.dumps({"step": step}))
            os.replace(tmp, ckpt)
            log.write(f"{step}\n")
            log.flush()
            if on_eval is not None and step % f.eval_every == 0:
                miou = target * step / steps
                if on_eval(step, {"val/miou": miou}) and step < steps:
                    return TrainResult("complete", step, {"val/miou": miou}, 0.0, "stopped", steps)
    return TrainResult(
        "complete",
        step,
        {"val/miou": target, "val/pixel_acc": 0.9},
        0.0,
        "",
        step_budget=steps,
        compile_s=0.5,  # what a real trainer reports; the driver records it
        train_s=steps * f.step_time,
    )


def run_sweep(config, workdir, *, evaluate=fake_train, render=True):
    """One in-process worker with the fake evaluator and cost, then the outputs."""
    ctx = prepare.prepare(config, workdir, evaluate=evaluate, cost_fn=fake_cost)
    driver.run_worker(ctx)
    if render:
        report.render(ctx.study, ctx.spec, ctx.workdir, winners=False, log=lambda *a: None)
    return ctx
