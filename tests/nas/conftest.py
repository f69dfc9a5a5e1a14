"""Fixtures shared by tests in several folders under tests/nas.

Export (tests/nas/export, tests/nas/cli/test_export.py): a tiny arch, toy_scenes data and a
briefly trained model. Everything runs at 64x64 with MobileNetV3-Small at width 0.5 (306k
params) so that one export (convert + parity + 30 timed runs) takes a few seconds on a 2-core
CPU. The trained model (60 Adam steps on toy_scenes, generated into a temporary tfds dir) gives
logits with real margins: parity of quantized models means something only on a trained model.

Training (tests/nas/train, tests/nas/cli/test_train.py): a private toy data dir and a shared
XLA compilation cache, so the several processes that train the smoke arch compile it once.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from nas.export.policy import init_variables
from nas.space.arch import Arch
from nas.space.build import build_model

TRAIN_STEPS = 60
BATCH = 8


@pytest.fixture(scope="session")
def tiny_arch() -> Arch:
    return Arch.from_dict(
        dict(
            encoder="mobilenet_v3_small",
            decoder="bilinear",
            width=0.5,
            resolution=(64, 64),
            num_classes=5,
        )
    )


@pytest.fixture(scope="session")
def toy_data_cfg(tmp_path_factory):
    from data.pipeline import default_data_config

    cfg = default_data_config("toy_scenes/images")
    cfg.data_dir = str(tmp_path_factory.mktemp("tfds"))
    cfg.builder_kwargs.train_size = 64
    cfg.builder_kwargs.validation_size = 16
    cfg.builder_kwargs.test_size = 8
    return cfg


@pytest.fixture(scope="session")
def trained(tiny_arch, toy_data_cfg):
    """(variables, final loss, first loss) after TRAIN_STEPS Adam steps of cross-entropy."""
    from data.pipeline import train_batches

    model = build_model(tiny_arch)
    variables = init_variables(tiny_arch)
    params, stats = variables["params"], variables["batch_stats"]
    opt = optax.adam(3e-3)
    opt_state = opt.init(params)

    def loss_fn(params, stats, batch):
        (logits, _), new = model.apply(
            {"params": params, "batch_stats": stats},
            batch["image"],
            train=True,
            mutable=["batch_stats"],
        )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["mask"]).mean()
        return loss, new["batch_stats"]

    def step(params, stats, opt_state, batch):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, loss

    batches = train_batches(toy_data_cfg, BATCH, seed=0)
    first = next(batches)
    # Compile time dominates 60 tiny steps: skip XLA's backend optimisations.
    step = (
        jax.jit(step)
        .lower(params, stats, opt_state, first)
        .compile(
            compiler_options={
                "xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True,
            }
        )
    )
    losses = []
    for _, batch in zip(range(TRAIN_STEPS), itertools.chain([first], batches), strict=False):
        params, stats, opt_state, loss = step(params, stats, opt_state, batch)
        losses.append(float(loss))
    return {"params": params, "batch_stats": stats}, losses


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, tiny_arch, toy_data_cfg, trained):
    """A training-run folder as `segnas train` leaves it (orbax checkpoint + config.json),
    written with the trainer's own `nas.train.checkpoint` helpers around the trained variables."""
    from nas.io import write_json
    from nas.train import checkpoint

    workdir = tmp_path_factory.mktemp("run")
    variables, _ = trained
    mngr = checkpoint.manager(workdir)
    state = {
        "step": np.int32(TRAIN_STEPS),
        "params": variables["params"],
        "batch_stats": variables["batch_stats"],
        "opt_state": {},
        "ema_params": None,
        "rng": np.zeros(2, np.uint32),
    }
    checkpoint.save(mngr, TRAIN_STEPS, state, {"arch": tiny_arch.to_dict(), "ema": False})
    mngr.wait_until_finished()
    write_json(workdir / "config.json", {"data": toy_data_cfg.to_dict()})
    return workdir


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compilation cache for this session's processes (in-process and subprocesses)."""
    path = Path(os.environ.get("SEGNAS_TEST_JAX_CACHE") or tmp_path_factory.mktemp("jax"))
    jax.config.update("jax_compilation_cache_dir", str(path))
    return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """toy_scenes is generated here on first use (about a second for the smoke sizes)."""
    return str(tmp_path_factory.mktemp("tfds"))
