"""Model cost from the model itself: parameters, multiply-accumulates and bytes.

Counting convention (the one torchvision's published MobileNetV3 figures use):
- params: trainable parameters, i.e. Flax's `params` collection: conv / dense kernels and
  biases, BatchNorm scale and bias. BatchNorm running statistics (`batch_stats`) are excluded.
- MACs: multiply-accumulates of convolutions and dense layers (`conv_general_dilated` and
  `dot_general` in the traced program). BatchNorm, activations, pooling, elementwise ops and
  bilinear resizes are not counted: a resize lives inside the `odml.upsample_bilinear2d`
  composite, whose body is skipped. FLOPs = 2 x MACs.
- bytes: params x bytes per weight (4 fp32, 2 fp16, 1 int8): the weight payload of a model
  with BN folded away is slightly smaller; the exporter reports the real .tflite size.

Everything is traced abstractly (`jax.eval_shape` / `jax.make_jaxpr` on shapes), so costing a
1024x2048 model takes well under a second and allocates nothing.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from nas.space.arch import Arch
from nas.space.build import build_model


def abstract_variables(arch: Arch, batch: int = 1) -> Any:
    """Shapes of the model's variables at `arch.resolution`, without allocating them."""
    model = build_model(arch)
    x = jax.ShapeDtypeStruct((batch, *arch.resolution, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)


def count_params(variables: Any) -> int:
    """Trainable parameters: elements of the `params` collection (batch_stats excluded)."""
    return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


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


def _sub_jaxprs(eqn: jcore.JaxprEqn):
    for p in eqn.params.values():
        for q in p if isinstance(p, (list, tuple)) else (p,):
            if isinstance(q, jcore.ClosedJaxpr):
                yield q.jaxpr
            elif isinstance(q, jcore.Jaxpr):
                yield q


def count_macs_jaxpr(jaxpr: jcore.Jaxpr) -> int:
    """Conv and dense MACs of `jaxpr`, recursing into sub-jaxprs but not into composites."""
    macs = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            macs += _conv_macs(eqn)
        elif name == "dot_general":
            macs += _dot_macs(eqn)
        elif name == "composite":
            continue  # bilinear resize: not a MAC by convention
        else:
            for sub in _sub_jaxprs(eqn):
                macs += count_macs_jaxpr(sub)
    return macs


def count_macs(arch: Arch) -> int:
    """MACs of one inference (batch 1) at `arch.resolution`."""
    model = build_model(arch)
    variables = abstract_variables(arch)
    x = jax.ShapeDtypeStruct((1, *arch.resolution, 3), jnp.float32)
    closed = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
    return count_macs_jaxpr(closed.jaxpr)


def cost(arch: Arch) -> dict[str, Any]:
    """Params, MACs, FLOPs and bytes of `arch` (see the module docstring for the convention)."""
    params = count_params(abstract_variables(arch))
    macs = count_macs(arch)
    return {
        "arch_id": arch.id,
        "params": params,
        "macs": macs,
        "flops": 2 * macs,
        "bytes_fp32": 4 * params,
        "bytes_fp16": 2 * params,
        "bytes_int8": params,
        "resolution": list(arch.resolution),
        "num_classes": arch.num_classes,
    }
