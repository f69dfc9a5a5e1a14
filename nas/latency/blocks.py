"""A model as a list of blocks, each with a canonical signature and a runnable micro-model.

The decomposition is read off the model itself, never from a hand-kept copy of its layers:
`decompose` traces `build_model(arch)` once (abstractly, with `jax.make_jaxpr`) and sorts
every equation of the traced program by its Flax name stack. A block is a direct child of the
encoder or of the decoder (`encoder/stem`, `encoder/block3`, `encoder/last_conv`,
`decoder/bottleneck`, `decoder/stage8`, `decoder/classify`, ...); what a parent computes
outside its children is one more block named after the parent (`decoder`: the output resize of
the seed-000 decoders, the gating and resizes of LR-ASPP). With `output="labels"` the argmax an
exported labels model ends with is the block `argmax`; with `output="labels_vimK"` the labels
come from the Valid Interpolate Module (`models/vim.py`, K classes kept) on the decoder's
low-resolution logits, and its ops (argmax, counts, top-k, gathers, the K-channel resize) are
the block `vim` (kind `VIM`), while the decoder's own full upsample, read by nobody, is pruned
from the decoder's program. So every equation, every variable and every multiply-accumulate
of the model belongs to exactly one block, by construction (and the tests check it).

`output` strings are segnas's one vocabulary of model outputs, parsed by `parse_output` only:
`logits`, `labels` and `labels_vimK` (the exporter adds `probs`, which no table times).

A block's micro-model is the model's own program restricted to that block: its equations,
pruned to those that feed the rest of the model (a coarse auxiliary head nobody reads is not
timed), with its variables bound to random constants and its activations as inputs. Its
signature (the latency table's key) is `Kind@input shapes#hash`, the hash being sha256 of the
micro-model's printed jaxpr: equal keys compute equal programs, any change in what a block
computes (a new kernel size, another activation, a changed layer implementation) gives a new
key instead of a stale table entry. The module's own fields (kernel, stride, dilation,
expansion, SE, activation, conv type / groups) ride along in `Block.fields`, for people.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from models.decoders import DECODERS
from models.vim import vim_labels
from nas.cost import abstract_variables, count_macs_jaxpr, live_equations
from nas.space.arch import Arch
from nas.space.build import build_model

OUTPUTS = ("logits", "labels")
VIM_PREFIX = "labels_vim"  # "labels_vim16": labels by VIM keeping 16 classes
_VIM_SCOPE = "vim"  # the name scope of VIM's ops, and their block's path


def parse_output(output: str) -> tuple[str, int]:
    """`(kind, K)`: ("logits", 0), ("labels", 0), or ("labels", K) for "labels_vimK" (K >= 1,
    written without leading zeros: one spelling per program); else a ValueError."""
    if output in OUTPUTS:
        return output, 0
    m = re.fullmatch(VIM_PREFIX + r"([1-9][0-9]*)", output) if isinstance(output, str) else None
    if m is None:
        raise ValueError(
            f"output: got {output!r}; allowed: {', '.join(OUTPUTS)}, {VIM_PREFIX}K "
            "(K an integer >= 1)"
        )
    return "labels", int(m.group(1))


def vim_output(k: int) -> str:
    """The output name of labels by VIM keeping `k` classes ("labels" when k is 0: off)."""
    return f"{VIM_PREFIX}{k}" if k else "labels"


def check_vim(
    arch: Arch, k: object, field: str = "vim", got: object = None, off: bool = False
) -> int:
    """`k` when VIM keeping K = k classes applies to `arch`, else a ValueError naming `field`
    (showing `got`, default `k`; `off`: 0 is allowed too, meaning no VIM)."""
    got = k if got is None else got
    vims = [n for n, h in DECODERS.items() if h.vim]
    if not DECODERS[arch.decoder.name].vim:
        raise ValueError(
            f"{field}: got {got!r} for decoder {arch.decoder.name!r}; allowed: "
            f"{'0 (off); ' if off else ''}VIM needs a decoder that returns its "
            f"low-resolution logits: {', '.join(vims)}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= arch.num_classes:
        raise ValueError(
            f"{field}: got {got!r}; allowed: {'0 (off) or ' if off else ''}an integer in "
            f"[1, {arch.num_classes}] (the model's classes)"
        )
    return k


def check_output(arch: Arch, output: str) -> tuple[str, int]:
    """`parse_output(output)`, with K checked against `arch` (`check_vim`)."""
    kind, k = parse_output(output)
    if k:
        check_vim(arch, k, "output", output)
    return kind, k


def model_output(model: Any, variables: Any, image: jax.Array, output: str) -> jax.Array:
    """`model`'s inference output for `output` ("labels_vimK" ops in the `vim` name scope)."""
    kind, k = parse_output(output)
    logits, aux = model.apply(variables, image, train=False)
    if k:
        with jax.named_scope(_VIM_SCOPE):
            return vim_labels(aux["low_logits"], image.shape[1:3], k)
    if kind == "labels":
        # Outside the model's name scope: the decomposition files it as the argmax block.
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return logits


@dataclasses.dataclass(frozen=True)
class Block:
    """One block of a model: where it is, what it is, and the program that times it."""

    path: str  # "encoder/block3"; a parent's own ops carry the parent's path ("decoder")
    kind: str  # module class ("InvertedResidual", "ConvBNAct", "UNetDecoder"), "Argmax", "VIM"
    fields: dict[str, Any] = dataclasses.field(compare=False)
    inputs: tuple[tuple[int, ...], ...]  # shapes of the activation inputs, in order of use
    outputs: tuple[tuple[int, ...], ...]
    macs: int  # of every equation, live or not (sums to nas.cost.count_macs(train=True))
    variables: tuple[str, ...]  # "params/encoder/block3/expand/conv/kernel", ...
    key: str  # the canonical signature, "Kind@1x32x32x24#0123456789"; "" if nothing reads it
    program: jcore.Jaxpr = dataclasses.field(compare=False, repr=False)
    # Variable paths of the program's leading inputs (bound to constants in the micro-model).
    constants: tuple[str, ...] = dataclasses.field(compare=False, repr=False, default=())

    def describe(self) -> str:
        """One line for people: kind, input shapes and the module's knobs."""
        knobs = " ".join(f"{k}={v}" for k, v in self.fields.items())
        return f"{self.kind} in={'+'.join('x'.join(map(str, s)) for s in self.inputs)} {knobs}"


def _simple(v: Any) -> bool:
    return isinstance(v, (bool, int, float, str)) or (
        isinstance(v, tuple) and all(isinstance(x, (bool, int, float, str)) for x in v)
    )


def _trace(arch: Arch, output: str) -> tuple[jcore.Jaxpr, list[str], dict[tuple, tuple]]:
    """The model's inference program, its variable paths and module path -> (class, fields)."""
    check_output(arch, output)
    model = build_model(arch)
    variables = abstract_variables(arch)
    modules: dict[tuple, tuple] = {}

    def record(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name == "__call__" and m.path not in modules:
            fields = {}
            for f in dataclasses.fields(m):
                v = getattr(m, f.name)
                if f.name in ("parent", "name"):
                    continue
                if dataclasses.is_dataclass(v) and not isinstance(v, type):  # conv spec, config
                    sub = {f"{f.name}.{k}": x for k, x in dataclasses.asdict(v).items()}
                    fields.update({k: x for k, x in sub.items() if _simple(x)})
                elif _simple(v):
                    fields[f.name] = v
            modules[m.path] = (type(m).__name__, fields)
        return next_fun(*args, **kwargs)

    x = jax.ShapeDtypeStruct((1, *arch.resolution, 3), jnp.float32)
    with nn.intercept_methods(record):
        closed = jax.make_jaxpr(lambda v, x: model_output(model, v, x, output))(variables, x)
    paths = [
        jax.tree_util.keystr(path, simple=True, separator="/")
        for path, _ in jax.tree_util.tree_flatten_with_path(variables)[0]
    ]
    return closed.jaxpr, paths + ["image"], modules


def _block_path(eqn: jcore.JaxprEqn) -> str:
    stack = str(eqn.source_info.name_stack).split("/")
    if not stack[0]:
        return "argmax"  # post-processing outside the model (output="labels")
    if stack[0] == _VIM_SCOPE:
        return _VIM_SCOPE  # VIM's post-processing (output="labels_vimK")
    return "/".join(stack[1:3])  # drop the root ("Segmenter"); keep encoder|decoder/<child>


def _shape(v: jcore.Var) -> tuple[int, ...]:
    return tuple(int(d) for d in v.aval.shape)


def decompose(arch: Arch, output: str = "logits") -> list[Block]:
    """The blocks of `arch`'s model in execution order (see the module docstring)."""
    jaxpr, var_paths, modules = _trace(arch, output)
    vim_k = parse_output(output)[1]
    if not any(str(e.source_info.name_stack) for e in jaxpr.eqns):
        raise RuntimeError(
            "the traced model carries no Flax name stack; the latency "
            "decomposition needs flax.config.flax_profile=True (the default)"
        )
    input_index = {v: i for i, v in enumerate(jaxpr.invars)}
    n_vars = len(var_paths) - 1  # the last program input is the image
    groups: dict[str, list[jcore.JaxprEqn]] = {}
    for e in jaxpr.eqns:
        groups.setdefault(_block_path(e), []).append(e)
    readers: dict[jcore.Var, set[str]] = {}
    for b, es in groups.items():
        for e in es:
            for v in e.invars:
                if isinstance(v, jcore.Var):
                    readers.setdefault(v, set()).add(b)
    for v in jaxpr.outvars:
        readers.setdefault(v, set()).add("<output>")

    blocks = []
    for path, eqns in groups.items():
        outs = [o for e in eqns for o in e.outvars if readers.get(o, set()) - {path}]
        kept = live_equations(eqns, outs)
        made = {o for e in kept for o in e.outvars}
        ins: list[jcore.Var] = []
        for e in kept:
            ins += [
                v for v in e.invars if isinstance(v, jcore.Var) and v not in made and v not in ins
            ]
        params = [v for v in ins if input_index.get(v, n_vars) < n_vars]
        acts = [v for v in ins if input_index.get(v, n_vars) >= n_vars]
        program = jcore.Jaxpr([], params + acts, outs, kept)
        used = {v for e in eqns for v in e.invars if isinstance(v, jcore.Var)}
        kind, fields = ("VIM", {"k": vim_k}) if path == _VIM_SCOPE else _kind(path, modules)
        in_shapes = tuple(_shape(v) for v in acts)
        digest = hashlib.sha256(str(program).encode()).hexdigest()[:10]
        shapes = "+".join("x".join(map(str, s)) for s in in_shapes)
        # A block nothing reads (an auxiliary head the exported output does not need) costs
        # nothing at run time: no signature, never measured.
        key = f"{kind}@{shapes}#{digest}" if outs else ""
        blocks.append(
            Block(
                path=path,
                kind=kind,
                fields=fields,
                inputs=in_shapes,
                outputs=tuple(_shape(v) for v in outs),
                macs=count_macs_jaxpr(jcore.Jaxpr([], [], [], eqns)),
                variables=tuple(
                    sorted(
                        var_paths[input_index[v]]
                        for v in used
                        if input_index.get(v, n_vars) < n_vars
                    )
                ),
                key=key,
                program=program,
                constants=tuple(var_paths[input_index[v]] for v in params),
            )
        )
    return blocks


def _kind(path: str, modules: dict[tuple, tuple]) -> tuple[str, dict[str, Any]]:
    if path == "argmax":
        return "Argmax", {}
    name, fields = modules[tuple(path.split("/"))]
    return name, dict(fields)


def _random_value(path: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A plausible random value for a variable: timing must not meet NaNs or denormals."""
    if path.endswith("/var"):  # BatchNorm variance: positive
        return (1.0 + 0.1 * np.abs(rng.standard_normal(shape))).astype(np.float32)
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)


def micro_model(block: Block, seed: int = 0) -> tuple[Callable[..., Any], list[np.ndarray]]:
    """`(fn, example_inputs)`: the block as a pure function of its activations, its variables
    bound to random constants. `fn` returns one array or a tuple (several outputs)."""
    rng = np.random.default_rng(seed)
    prog, n = block.program, len(block.constants)
    consts = [
        _random_value(p, _shape(v), rng) for p, v in zip(block.constants, prog.invars, strict=False)
    ]
    closed = jcore.ClosedJaxpr(
        jcore.Jaxpr(prog.invars[:n], prog.invars[n:], prog.outvars, prog.eqns), consts
    )
    run = jcore.jaxpr_as_fun(closed)

    def fn(*acts):
        out = run(*acts)
        return out[0] if len(out) == 1 else tuple(out)

    inputs = [rng.standard_normal(s).astype(np.float32) for s in block.inputs]
    return fn, inputs


def random_variables(arch: Arch, rng: np.random.Generator) -> Any:
    """`arch`'s variables drawn like the micro-models' constants: activations keep their scale
    through the network (initial BatchNorm statistics shrink them, and BN scales of 0 let the
    converter fold whole branches away), so timing and VIM checks see a working model."""
    return jax.tree_util.tree_map_with_path(
        lambda p, s: _random_value(
            jax.tree_util.keystr(p, simple=True, separator="/"), s.shape, rng
        ),
        abstract_variables(arch),
    )


def whole_model(
    arch: Arch, output: str = "logits", seed: int = 0
) -> tuple[Callable[[Any], Any], list[np.ndarray]]:
    """`(fn, [image])`: the whole model as the exporter sees it (logits, or int32 labels, by
    VIM for "labels_vimK"), its variables random like the micro-models' (initialising them
    would cost a compile)."""
    check_output(arch, output)
    model = build_model(arch)
    rng = np.random.default_rng(seed)
    variables = random_variables(arch, rng)
    image = rng.standard_normal((1, *arch.resolution, 3)).astype(np.float32)

    def fn(x):
        return model_output(model, variables, x, output)

    return fn, [image]
