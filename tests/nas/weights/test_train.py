"""Acceptance of issue 13: `segnas train` with `train.init_from` starts from the imported
encoder (its checkpointed params are the file's tensors, and its first-step loss is not the
random initialisation's), and a resumed run does not import again."""

from __future__ import annotations

from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest

from nas.cli import main as cli
from nas.train import checkpoint
from nas.train.loop import train_and_evaluate
from tests.nas.weights.helpers import fake_tensors, write


@pytest.fixture
def frozen(data_dir: str, jax_cache: Path) -> ml_collections.ConfigDict:
    """toy_train's smoke config (MobileNetV3-Small, 32 px) for one SGD step at learning rate
    1e-9 (0 is not allowed), so the checkpoint holds the initial params to within 1e-4."""
    from experiments.toy_train import get_config

    c = get_config("smoke")
    c.data.data_dir = data_dir
    c.train.update(
        progress=False,
        steps=1,
        optimizer="sgd",
        lr=1e-9,
        warmup_lr=1e-9,
        schedule="constant",
        weight_decay=0.0,
    )
    c.wandb.mode = "disabled"
    return c


@pytest.mark.slow  # three short training runs: about 70 s on the 2-core VM
def test_train_starts_from_the_file(frozen, tmp_path: Path) -> None:
    tensors = fake_tensors("mobilenet_v3_small", "timm", seed=3)
    for name in [n for n in tensors if n.endswith("running_var")]:
        tensors[name] = np.abs(tensors[name]) + 0.5
    path = write(tmp_path / "mnv3_small.safetensors", tensors)

    random_init = train_and_evaluate(frozen, tmp_path / "random")
    frozen.train.init_from.update(path=str(path), format="timm")
    pretrained = train_and_evaluate(frozen, tmp_path / "pretrained")
    assert random_init.status == pretrained.status == "complete"
    losses = random_init.metrics["train/loss"], pretrained.metrics["train/loss"]
    print(f"first-step loss: random init {losses[0]:.6f}, from the file {losses[1]:.6f}")
    assert losses[0] != losses[1]

    _, variables, _ = checkpoint.load_run(tmp_path / "pretrained")
    enc = variables["params"]["encoder"]
    # the timm tensors, OIHW -> HWIO, where timm's names put them
    np.testing.assert_allclose(
        enc["stem"]["conv"]["kernel"], tensors["conv_stem.weight"].transpose(2, 3, 1, 0), atol=1e-4
    )
    np.testing.assert_allclose(
        enc["block4"]["se"]["reduce"]["kernel"],
        tensors["blocks.2.0.se.conv_reduce.weight"].transpose(2, 3, 1, 0),
        atol=1e-4,
    )
    np.testing.assert_allclose(
        enc["last_conv"]["bn"]["bias"], tensors["blocks.5.0.bn1.bias"], atol=1e-4
    )
    # the decoder stays freshly initialised: the same as the random run's
    _, random_vars, _ = checkpoint.load_run(tmp_path / "random")
    dec, random_dec = variables["params"]["decoder"], random_vars["params"]["decoder"]
    assert jax.tree.structure(dec) == jax.tree.structure(random_dec)
    for a, b in zip(jax.tree.leaves(dec), jax.tree.leaves(random_dec), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)

    # a resumed run keeps its checkpoint: a file that no longer exists is not read again...
    # (a missing file is a UserError before anything runs, so the rerun points at another one)
    frozen.train.steps = 2
    other = fake_tensors("mobilenet_v3_small", "timm", seed=4)
    frozen.train.init_from.path = str(write(tmp_path / "other.safetensors", other))
    assert train_and_evaluate(frozen, tmp_path / "pretrained").status == "complete"
    _, resumed, _ = checkpoint.load_run(tmp_path / "pretrained")
    np.testing.assert_allclose(
        resumed["params"]["encoder"]["stem"]["conv"]["kernel"],
        enc["stem"]["conv"]["kernel"],
        atol=1e-4,
    )


def test_cli_bad_init_file_exits_2(frozen, tmp_path: Path, capsys) -> None:
    code = cli.main(
        [
            "train",
            "--config",
            "experiments/toy_train.py:smoke",
            "--workdir",
            str(tmp_path / "run"),
            f"--config.data.data_dir={frozen.data.data_dir}",
            f"--config.train.init_from.path={tmp_path / 'none.h5'}",
            "--config.train.init_from.format=keras",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert f"train.init_from.path: {str(tmp_path / 'none.h5')!r} is not a file" in err
