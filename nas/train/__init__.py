"""Candidate training: a `TrainState`, pure jitted steps sharded over a device mesh, the plan
derived from a config, the loop, losses, optimizers, orbax checkpoints and metric writers."""
