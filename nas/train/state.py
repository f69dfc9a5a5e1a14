"""The training state and the result of a run.

`TrainState` is a pytree (flax struct): step, params, BatchNorm statistics, optimizer state,
EMA params (None when EMA is off) and the state's RNG; `create_train_state` is pure, so it can
be jitted with an output sharding that places it on the mesh.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from models.segmenter import Segmenter


@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes; checkpointed whole."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    ema_params: Any  # None when EMA is off
    rng: jax.Array
    # the BatchNorm statistics averaged like the params (evaluated with them); None: EMA off
    ema_batch_stats: Any = None


def create_train_state(
    model: Segmenter, tx: optax.GradientTransformation, hw: tuple[int, int], seed: int, ema: bool
) -> TrainState:
    """The initial state (pure: jit it with an out_sharding to place it)."""
    init_rng, dropout_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed), 3)
    variables = model.init(
        {"params": init_rng, "dropout": dropout_rng},
        jnp.zeros((1, *hw, 3), jnp.float32),
        train=False,
    )
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=tx.init(params),
        ema_params=params if ema else None,
        rng=state_rng,
        ema_batch_stats=batch_stats if ema else None,
    )
