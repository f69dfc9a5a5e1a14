"""Low-level TFLite (LiteRT) plumbing: convert a JAX function, inspect ops, run and time.

Conversion needs no TensorFlow: `jax.jit(fn)` is
lowered to StableHLO *text*, parsed by litert-converter's bundled MLIR, run through its
StableHLO -> TFL legalisation passes and serialised as a flatbuffer. Composites named
`odml.*` (our bilinear upsample) become single builtins (RESIZE_BILINEAR) there.

Running uses `ai_edge_litert.interpreter.Interpreter` with the default op resolver
(`OpResolverType.AUTO`), which applies the XNNPACK delegate automatically to every op it
supports (for float models: all but ARG_MAX). `threads` is passed as `num_threads`, which
sets both the interpreter's and XNNPACK's thread pool. Tensors are allocated once (fixed
shapes), so timing one `invoke()` measures inference only, not allocation or copies.

`Runner` speaks floats at the boundary: an int8 / int16 input (full-int8 models from
ai-edge-quantizer) is quantized with that tensor's scale and zero point, and a quantized
output is dequantized, because writing float32 into an int8 buffer silently gives garbage.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

_NON_BUILTIN = ("CUSTOM", "DELEGATE")


def convert(
    fn: Callable,
    example_args: Sequence[np.ndarray],
    input_names: Sequence[str],
    output_names: Sequence[str],
    signature: str = "serving_default",
) -> bytes:
    """Converts a pure JAX function of arrays to a .tflite flatbuffer (no TensorFlow).

    `fn` must close over its variables (BatchNorm in inference mode) and return one array or
    a tuple of arrays in the order of `output_names`. Raises ValueError when the names do not
    match the function's arity.
    """
    # Imported here: the MLIR bindings take ~0.5 s to load and most callers only run models.
    from litert_converter.mlir import ir, passmanager
    from litert_converter.mlir._mlir_libs import converter_api_ext as conv_ext

    if len(input_names) != len(example_args):
        raise ValueError(
            f"input_names: got {len(input_names)} names for "
            f"{len(example_args)} example args; allowed: one name per arg"
        )
    out_shapes = jax.eval_shape(fn, *example_args)
    n_out = len(out_shapes) if isinstance(out_shapes, (tuple, list)) else 1
    if len(output_names) != n_out:
        raise ValueError(
            f"output_names: got {len(output_names)} names for {n_out} outputs; "
            "allowed: one name per output"
        )
    # debug_info keeps Flax module paths as tensor names, which per-op profiles rely on.
    text = jax.jit(fn).lower(*example_args).as_text(debug_info=True)
    context = ir.Context()
    conv_ext.prepare_mlir_context(context)
    with context:
        module = ir.Module.parse(text)
        conv_ext.set_signature(module.operation, signature, list(input_names), list(output_names))
        config = conv_ext.ConvertToTFLConfig()
        config.model_origin_framework = "JAX"
        conv_ext.run_convert_to_tfl_passes(module, passmanager.PassManager(), config)
        return bytes(conv_ext.export_flatbuffer_to_bytes(module.operation))


def _op_names(tfl: bytes) -> list[str]:
    """One name per operator in every subgraph; custom ops as `CUSTOM:<code>`."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(tfl, 0)
    code_to_name = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        # Codes < 127 live in the deprecated int8 field too; the larger of the two is right.
        name = code_to_name.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "UNKNOWN")
        if name == "CUSTOM" and oc.CustomCode():
            name = f"CUSTOM:{oc.CustomCode().decode()}"
        codes.append(name)
    names = []
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        names += [codes[sg.Operators(j).OpcodeIndex()] for j in range(sg.OperatorsLength())]
    return names


def op_counts(tfl: bytes) -> dict[str, int]:
    """Builtin op name -> number of operators, over all subgraphs, sorted by name."""
    return dict(sorted(Counter(_op_names(tfl)).items()))


def non_builtin_ops(tfl: bytes) -> list[str]:
    """Sorted names of ops a stock TFLite runtime lacks: STABLEHLO_*, CUSTOM (incl. Flex*),
    DELEGATE. Empty for a deployable model."""
    return sorted(
        n for n in op_counts(tfl) if n.startswith(("STABLEHLO_",) + _NON_BUILTIN) or n == "UNKNOWN"
    )


def _is_quantized(detail: dict) -> bool:
    return (
        detail["dtype"] in (np.int8, np.uint8, np.int16)
        and len(detail["quantization_parameters"]["scales"]) > 0
    )


class Runner:
    """One LiteRT interpreter (XNNPACK, `threads` threads) bound to one signature.

    `runner(image=x)` returns `{output name: array}`; quantized I/O is converted from and to
    float with the tensors' own quantization parameters (see the module docstring).
    """

    def __init__(self, tfl: bytes, threads: int = 1, signature: str = "serving_default"):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=tfl, num_threads=threads)
        self.interpreter.allocate_tensors()
        sig = self.interpreter.get_signature_runner(signature)
        self.inputs: dict[str, dict] = sig.get_input_details()
        self.outputs: dict[str, dict] = sig.get_output_details()

    def _set(self, inputs: dict[str, np.ndarray]) -> None:
        for name, value in inputs.items():  # names checked by __call__
            d = self.inputs[name]
            value = np.asarray(value)
            if tuple(value.shape) != tuple(d["shape"]):
                raise ValueError(
                    f"input {name}: got shape {value.shape}; allowed: "
                    f"{tuple(int(s) for s in d['shape'])}"
                )
            if _is_quantized(d) and value.dtype.kind == "f":
                q = d["quantization_parameters"]
                info = np.iinfo(d["dtype"])
                value = np.clip(
                    np.round(value / q["scales"][0]) + q["zero_points"][0], info.min, info.max
                )
            self.interpreter.set_tensor(d["index"], value.astype(d["dtype"]))

    def _get(self) -> dict[str, np.ndarray]:
        result = {}
        for name, d in self.outputs.items():
            value = self.interpreter.get_tensor(d["index"])
            if _is_quantized(d):
                q = d["quantization_parameters"]
                value = (value.astype(np.float32) - np.float32(q["zero_points"][0])) * np.float32(
                    q["scales"][0]
                )
            result[name] = value
        return result

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Run once on exactly the named inputs; outputs by name, quantized ones dequantized."""
        if set(inputs) != set(self.inputs):
            raise ValueError(
                f"inputs: got {sorted(inputs)}; allowed: exactly {sorted(self.inputs)}"
            )
        self._set(inputs)
        self.interpreter.invoke()
        return self._get()


def benchmark(
    tfl: bytes,
    inputs: dict[str, np.ndarray],
    threads: int = 1,
    warmup: int = 5,
    runs: int = 40,
    companion_sets: Sequence[Sequence[Any]] = (),
    reference_ms: float | None = None,
    anchors: dict[str, float] | None = None,
    output: str = "logits",
) -> dict:
    """Latency of `invoke()` in ms on segnas's timing protocol (`nas/latency/measure.py`: single
    calls on the table's clock, `runs` interleaved rounds after `warmup` untimed calls), timed
    among whole models (`companion_sets`: archs, one chunk per set; `nas/latency/context.py`)
    so that the figure compares with a latency table's: median, 10th and 90th percentile. With
    `reference_ms` (a table's reference scale) the reference program is timed in every chunk
    and `scaled_median_ms` is the median on the table's scale, by the `anchors` (companions
    that are the table's calibration models, their table figures by arch id, timed with
    `output`) where given, else by the reference program (`nas/latency/context.py`)."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs/warmup: got {runs}/{warmup}; allowed: runs >= 1, warmup >= 0")
    from nas.latency import context, measure

    runner = Runner(tfl, threads=threads)
    runner(**inputs)
    clock = measure.clock_name("litert-cpu", threads)
    timer = measure.call_timer(runner.interpreter.invoke, clock)
    ms, scaled, ref = context.time_among(
        timer,
        companion_sets,
        "litert-cpu",
        threads,
        runs,
        warmup,
        reference_ms=reference_ms,
        anchors=anchors,
        output=output,
    )
    p10, p90 = np.percentile(ms, [10, 90]).tolist()
    out = {
        "median_ms": statistics.median(ms),
        "p10_ms": p10,
        "p90_ms": p90,
        "runs": runs,
        "warmup": warmup,
        "threads": threads,
        "clock": clock,
        "companion_sets": len(companion_sets),
        "companions": max((len(c) for c in companion_sets), default=0),
    }
    if scaled:
        out.update(
            scaled_median_ms=statistics.median(scaled),
            reference_ms=ref,
            table_reference_ms=reference_ms,
            scaled_by="calibration models" if anchors else "reference program",
        )
    return out
