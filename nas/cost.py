"""Model cost from the model itself: parameters, multiply-accumulates and bytes.

Counting convention (the one torchvision's published MobileNetV3 figures use):
- params: trainable parameters, i.e. Flax's `params` collection: conv / dense kernels and
  biases, BatchNorm scale and bias. BatchNorm running statistics (`batch_stats`) are excluded.
- MACs: multiply-accumulates of convolutions and dense layers (`conv_general_dilated` and
  `dot_general` in the traced program). BatchNorm, activations, pooling, elementwise ops and
  bilinear resizes are not counted: a resize lives inside the `odml.upsample_bilinear2d`
  composite, whose body is skipped. FLOPs = 2 x MACs. Each conv is counted at its traced
  output size, so an input that the strides do not divide counts its real ceil(H / s) maps
  (360 x 640 at 1/16 is 23 x 40), not H / s.
- bytes: params x bytes per weight (4 fp32, 2 fp16, 1 int8): the weight payload of a model
  with BN folded away is slightly smaller; the exporter reports the real .tflite size.

Deployed vs train: `params` and `macs` (and FLOPs, bytes) are the *deployed* model's, the
program an export runs: `model.apply(v, x, train=False)`'s logits only, restricted to the
equations the logits depend on (`live_equations`) and the parameters those equations read.
Auxiliary outputs only the training loss reads are not in it: the seed-000 U-Net's coarse
head (`decoder/bottleneck/coarse`, a 1x1 conv predicting `aux["coarse_logits"]` for deep
supervision) is dead at inference, and the exported model drops it. `params_train` and
`macs_train` count the whole model as trained: every `params` leaf, and the MACs of the
inference program with all its outputs. They are equal for a model without such a head
(the classifier, LR-ASPP). Search objectives and constraints on params / MACs / bytes
mean the deployed figures.

Everything is traced abstractly (`jax.eval_shape` / `jax.make_jaxpr` on shapes), so costing a
1024x2048 model takes well under a second and allocates nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from nas.space.arch import Arch
from nas.space.build import build_model


@functools.lru_cache(maxsize=256)
def abstract_variables(arch: Arch, batch: int = 1) -> Any:
    """Shapes of the model's variables at `arch.resolution`, without allocating them (cached,
    shared between callers: do not mutate; tracing the init takes ~0.8 s and a latency table
    build asks for each arch's twice, to decompose it and to build it whole)."""
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((batch, *arch.resolution, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)


def count_params(variables: Any) -> int:
    """Trainable parameters: elements of the `params` collection (batch_stats excluded), all of
    them: the model as trained (`params_train`), auxiliary heads included."""
    return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


def live_equations(
    eqns: Sequence[jcore.JaxprEqn], outs: Iterable[jcore.Var]
) -> list[jcore.JaxprEqn]:
    """The equations of `eqns` that `outs` depend on, in program order.

    Backward liveness over a straight-line program without side effects (what
    `jax.make_jaxpr` gives for a Flax model at inference): walking from the last equation to
    the first, an equation is kept if it defines a variable still needed, and then its inputs
    are needed too. The granularity is one top-level equation: an equation with a
    sub-program (a `pjit`, a composite) is kept or dropped whole. Literals are never needed.
    """
    need: set[jcore.Var] = {v for v in outs if isinstance(v, jcore.Var)}
    kept: list[jcore.JaxprEqn] = []
    for e in reversed(eqns):
        if any(o in need for o in e.outvars):
            kept.append(e)
            need.update(v for v in e.invars if isinstance(v, jcore.Var))
    return kept[::-1]


def _conv_macs(eqn: jcore.JaxprEqn) -> int:
    out = eqn.outvars[0].aval.shape
    rhs = eqn.invars[1].aval.shape
    dn = eqn.params["dimension_numbers"]
    # rhs_spec = (out feature dim, in feature dim, *spatial dims) as indices into rhs.
    out_dim, in_dim, *spatial = dn.rhs_spec
    per_output = rhs[in_dim] * math.prod(rhs[d] for d in spatial)
    return math.prod(out) * per_output


def _dot_macs(eqn: jcore.JaxprEqn) -> int:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    return math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in lhs_contract)


def _sub_jaxprs(eqn: jcore.JaxprEqn) -> Iterator[jcore.Jaxpr]:
    for p in eqn.params.values():
        for q in p if isinstance(p, (list, tuple)) else (p,):
            if isinstance(q, jcore.ClosedJaxpr):
                yield q.jaxpr
            elif isinstance(q, jcore.Jaxpr):
                yield q


def count_macs_eqns(eqns: Iterable[jcore.JaxprEqn]) -> int:
    """Conv and dense MACs of `eqns`, recursing into sub-jaxprs but not into composites."""
    macs = 0
    for eqn in eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            macs += _conv_macs(eqn)
        elif name == "dot_general":
            macs += _dot_macs(eqn)
        elif name == "composite":
            continue  # bilinear resize: not a MAC by convention
        else:
            for sub in _sub_jaxprs(eqn):
                macs += count_macs_eqns(sub.eqns)
    return macs


def count_macs_jaxpr(jaxpr: jcore.Jaxpr) -> int:
    """Conv and dense MACs of every equation of `jaxpr`, live or not (`count_macs_eqns`)."""
    return count_macs_eqns(jaxpr.eqns)


def program_costs(
    apply: Callable[[Any, Any], tuple[Any, Any]], variables: Any, x: Any
) -> dict[str, int]:
    """Deployed and train counts of `apply(variables, x) -> (logits, aux)`, traced abstractly.

    `params` / `macs`: the `params` leaves read by, and the MACs of, the equations the logits
    depend on (`live_equations`); `params_train` / `macs_train`: every `params` leaf, and the
    MACs of every equation (aux outputs included). `variables` and `x` may be
    `jax.ShapeDtypeStruct`s.
    """
    closed, shapes = jax.make_jaxpr(apply, return_shape=True)(variables, x)
    jaxpr = closed.jaxpr
    outs = jaxpr.outvars[: len(jax.tree.leaves(shapes[0]))]
    live = live_equations(jaxpr.eqns, outs)
    read = {v for e in live for v in e.invars if isinstance(v, jcore.Var)}
    read.update(v for v in outs if isinstance(v, jcore.Var))
    leaves = jax.tree_util.tree_flatten_with_path(variables)[0]
    # The program's inputs are the leaves of (variables, x), in this order.
    sizes = [
        (var, math.prod(leaf.shape))
        for var, (path, leaf) in zip(jaxpr.invars, leaves, strict=False)
        if getattr(path[0], "key", None) == "params"
    ]
    return {
        "params": sum(n for var, n in sizes if var in read),
        "macs": count_macs_eqns(live),
        "params_train": sum(n for _, n in sizes),
        "macs_train": count_macs_jaxpr(jaxpr),
    }


def _arch_costs(arch: Arch) -> dict[str, int]:
    """`program_costs` of `arch`'s model at inference (batch 1, `arch.resolution`)."""
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((1, *arch.resolution, 3), jnp.float32)
    return program_costs(lambda v, x: model.apply(v, x, train=False), abstract_variables(arch), x)


def count_macs(arch: Arch, *, train: bool = False) -> int:
    """MACs of one inference (batch 1) at `arch.resolution`: the deployed model's (the
    equations the logits depend on), or with `train=True` every equation of the inference
    program, auxiliary outputs included."""
    return _arch_costs(arch)["macs_train" if train else "macs"]


def cost(arch: Arch) -> dict[str, Any]:
    """Params, MACs, FLOPs and bytes of `arch`'s deployed model, and `params_train` /
    `macs_train` of the whole model as trained (see the module docstring)."""
    c = _arch_costs(arch)
    params, macs = c["params"], c["macs"]
    return {
        "arch_id": arch.id,
        "params": params,
        "macs": macs,
        "flops": 2 * macs,
        "bytes_fp32": 4 * params,
        "bytes_fp16": 2 * params,
        "bytes_int8": params,
        "params_train": c["params_train"],
        "macs_train": c["macs_train"],
        "resolution": list(arch.resolution),
        "num_classes": arch.num_classes,
    }
