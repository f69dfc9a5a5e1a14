"""Data parallelism: one train step over 8 (fake CPU) devices equals the step on 1 device.

XLA reads `--xla_force_host_platform_device_count` at start-up, so the comparison runs in a
subprocess: MobileNetV3-Small at depth 0.1 (one block per stage, 5 of its 11, since compiling
dominates this test) with a U-Net decoder (BatchNorm, squeeze-excite, the coarse-mask
auxiliary loss, EMA) takes one step on a mesh of device 0 and one on a mesh of all 8, from the
same state and batch, and the losses, params, BatchNorm statistics, EMA params and evaluation
confusion matrices are compared there.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.nas.train.helpers import subprocess_env

SCRIPT = r"""
import json
import jax, ml_collections, numpy as np, optax
from jax.sharding import NamedSharding, PartitionSpec as P
from nas.errors import UserError
from nas.train.losses import LossSpec
from nas.space.arch import Arch
from nas.space.build import build_model
from nas.train.plan import Plan
from nas.train.sharding import global_batch, jit_steps, make_mesh
from nas.train.state import create_train_state
from nas.train.steps import make_eval_step, make_train_step

assert jax.device_count() == 8, jax.devices()
arch = Arch.from_dict(
    dict(encoder={"name": "mobilenet_v3_small", "depth": 0.1},
         decoder={"name": "unet", "kind": "bilinear"}, resolution=(32, 32), num_classes=5)
)
# SGD: the update is linear in the gradient, so parameters compare at float precision
# (Adam's first step is lr * sign(g), which flips on gradients that round to ~0)
model, tx, hw = build_model(arch), optax.sgd(0.1), arch.resolution
loss = LossSpec({"ce": 1.0, "lovasz": 0.25}, aux_weight=0.4)
rng = np.random.default_rng(0)
batch = {"image": rng.normal(size=(8, 32, 32, 3)).astype(np.float32),
         "mask": rng.integers(0, 5, (8, 32, 32)).astype(np.int32)}
batch["mask"][0, :5] = 255
# one initial state, placed on each mesh (initialising is compiled once, not per mesh)
state0 = jax.device_get(jax.jit(lambda: create_train_state(model, tx, hw, 0, True))())
out = {}
for n in (1, 8):
    mesh = make_mesh(jax.devices()[:n])
    train_step, eval_step = jit_steps(
        make_train_step(model, tx, loss, optax.constant_schedule(0.1), hw, ema_decay=0.9),
        make_eval_step(model, 5, hw, use_ema=True), mesh)
    b = global_batch(batch, mesh)
    shards = {s.device for s in b["image"].addressable_shards}
    state, m = train_step(jax.device_put(state0, NamedSharding(mesh, P())), b)
    cm = eval_step(state, b)
    out[n] = dict(shards=len(shards), state=jax.device_get(state), m=jax.device_get(m),
                  cm=np.asarray(cm))
one, eight = out[1], out[8]
diff = lambda a, b: max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
scale = lambda a: max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(a))
try:
    Plan.from_config(ml_collections.ConfigDict(dict(
        batch_size=4, steps=1, eval_every=0, checkpoint_every=1, log_every=1,
        keep_checkpoints=1, seed=0)))
    plan_error = None
except UserError as e:
    plan_error = str(e)
print(json.dumps(dict(
    shards=[one["shards"], eight["shards"]],
    loss=[float(one["m"]["train/loss"]), float(eight["m"]["train/loss"])],
    aux=[float(one["m"]["train/loss_aux"]), float(eight["m"]["train/loss_aux"])],
    params=diff(one["state"].params, eight["state"].params),
    params_scale=scale(one["state"].params),
    moved=diff(one["state"].params, state0.params),
    batch_stats=diff(one["state"].batch_stats, eight["state"].batch_stats),
    ema=diff(one["state"].ema_params, eight["state"].ema_params),
    cm_equal=bool((one["cm"] == eight["cm"]).all()), cm_total=int(one["cm"].sum()),
    plan_error=plan_error)))
"""


@pytest.mark.slow
def test_one_step_on_8_devices_equals_one_device(jax_cache):
    env = subprocess_env(jax_cache, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["shards"] == [1, 8]  # the batch really is split over 8 devices
    assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-5)
    assert r["aux"][0] == pytest.approx(r["aux"][1], rel=1e-5)
    assert r["moved"] > 1e-3  # the step changed the params...
    assert r["params"] < 1e-5 * max(1.0, r["params_scale"])  # ...identically on 1 and 8
    assert r["batch_stats"] < 1e-4 and r["ema"] < 1e-5
    assert r["cm_equal"] and r["cm_total"] == 8 * 32 * 32 - 5 * 32
    assert r["plan_error"] == (
        "train.batch_size: got 4; allowed: a multiple of the device "
        "count 8 (the batch is split over devices)"
    )


def test_aot_step_compiles_once_per_signature_and_counts_the_seconds():
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nas.train.sharding import AotStep

    lowered = []

    class Counting:  # a jitted function that records each lowering
        def __init__(self):
            self.jitted = jax.jit(lambda x, y: (x * y).sum())

        def lower(self, *args):
            lowered.append(tuple(a.shape for a in args))
            return self.jitted.lower(*args)

    step = AotStep(Counting())
    x = jnp.arange(6.0).reshape(2, 3)
    assert float(step(x, x)) == 55.0  # 0 + 1 + 4 + 9 + 16 + 25
    assert float(step(x + 1, x)) == 70.0  # same signature: the same executable
    assert lowered == [((2, 3), (2, 3))] and step.seconds > 0
    first = step.seconds
    assert float(step(jnp.ones(4), jnp.ones(4))) == 4.0  # a new shape compiles again
    assert float(step(x.astype(jnp.int32), x.astype(jnp.int32))) == 55  # a new dtype too
    assert len(lowered) == 3 and step.seconds > first
    # compiling ahead of time from shapes (and the placement) alone, then calling: no
    # further lowering
    spec = jax.ShapeDtypeStruct((5,), np.float32, sharding=jnp.ones(5).sharding)
    step.compile(spec, spec)
    assert len(lowered) == 4
    assert float(step(jnp.ones(5), jnp.ones(5))) == 5.0 and len(lowered) == 4
