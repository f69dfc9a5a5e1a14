"""Export a candidate to TFLite: convert, check ops, quantize, check parity, benchmark, write.

The path is TensorFlow-free (`nas.export.tflite.convert`):
JAX -> StableHLO -> litert-converter -> flatbuffer, with bilinear upsampling kept as one
RESIZE_BILINEAR by the `odml.upsample_bilinear2d` composite in `models/layers.py`.

What `export_candidate` guarantees, in order (nothing is written until every check ran):
1. the model holds TFLite builtin ops only (any STABLEHLO_*, CUSTOM/Flex or DELEGATE op is a
   `UserError` naming the ops; `force` does not override it: such a file does not run), and a
   segmentation model keeps its upsampling as RESIZE_BILINEAR (not constant matmuls);
2. quantization with ai-edge-quantizer: `fp16` = weight-only float16 (the quantizer's
   FLOAT_CASTING algorithm on CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED weights, which
   it has no named recipe for), `dynamic_int8` = `dynamic_wi8_afp32`, `int8` =
   `static_wi8_ai8` calibrated on representative images (by default the first 100 images of
   the training split with the evaluation preprocessing, no augmentation; at least 8; int8
   I/O: `nas.export.tflite.Runner` quantizes inputs and dequantizes outputs with the
   tensors' own parameters);
3. parity against the *float* JAX model on >= 8 real images (the run's dataset, or toy_scenes
   without a checkpoint): max abs difference of the exported output (logits / probs; not
   defined for labels) and argmax agreement per pixel (with VIM, `labels_vimK`: agreement
   with the JAX model's VIM labels, and `full_argmax_agreement`, with its full upsample +
   argmax, reported: what keeping K classes loses, not an export fault). Float models must reach
   max abs diff <= 1e-4 and agreement >= 99.9 %, else `UserError` and nothing is written,
   unless `force` (written, `parity.passed` false, loud warning). Quantized models only
   report parity: the thresholds do not apply to them;
4. latency: LiteRT interpreter, XNNPACK, 1 thread, on the latency tables' protocol (median of
   40 single calls on the thread's CPU clock, interleaved with 7 other whole models, in 3
   chunks with other companions each: `nas/latency/context.py`; against a table, also on the
   table's reference scale), so a table's prediction compares with it;
5. the .tflite and its JSON report (`PATH.json`) are written to temporary files beside the
   target and renamed into place, so an interrupted export leaves nothing half-written.

The model's input is the float image exactly as the trainer feeds it (after the data
pipeline's normalisation), NHWC with batch 1, named `image`.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nas import __version__ as SEGNAS_VERSION
from nas.errors import UserError
from nas.export import tflite
from nas.io import write_together
from nas.latency.blocks import VIM_PREFIX, check_vim, model_output, parse_output
from nas.space.arch import Arch
from nas.space.build import build_model

QUANTIZE: tuple[str, ...] = ("none", "fp16", "dynamic_int8", "int8")
OUTPUTS: tuple[str, ...] = ("logits", "labels", "probs")
MAX_ABS_DIFF = 1e-4
MIN_ARGMAX_AGREEMENT = 0.999
MIN_INPUTS = 8
CALIBRATION_IMAGES = 100  # int8 calibration: training images, not augmented (fewer if fewer)
INPUT_NAME = "image"
INIT_SEED = 0


def init_variables(arch: Arch, seed: int = INIT_SEED) -> Any:
    """Variables of an untrained model, from a fixed seed (exports without a checkpoint).

    Initialised at the smallest legal input (output stride squared): variable shapes do not
    depend on the resolution (checked against an abstract trace at the real one) and the
    values only on the seed. The init program runs once, so it is compiled without XLA's
    backend optimisations: that halves its compile time, which dominates (~10-40 s for
    EfficientNet-Lite0 on a 2-core CPU, mostly the per-variable random initialisers).
    """
    model = build_model(arch)
    real = jax.ShapeDtypeStruct((1, *arch.resolution, 3), jnp.float32)
    want = jax.eval_shape(model.init, jax.random.key(seed), real)
    small = jnp.zeros((1, arch.output_stride, arch.output_stride, 3), jnp.float32)
    shapes_match = jax.tree.map(
        np.shape, jax.eval_shape(model.init, jax.random.key(seed), small)
    ) == jax.tree.map(np.shape, want)
    x = small if shapes_match else jnp.zeros(real.shape, real.dtype)
    init = (
        jax.jit(model.init)
        .lower(jax.random.key(seed), x)
        .compile(
            compiler_options={
                "xla_backend_optimization_level": 0,
                "xla_llvm_disable_expensive_passes": True,
            }
        )
    )
    return init(jax.random.key(seed), x)


def check_export_output(arch: Arch, output: str) -> int:
    """K of a `labels_vimK` output (VIM keeping K classes), 0 for logits, labels and probs;
    UserError for any other output or a K that does not fit `arch`."""
    if output == "probs":
        return 0
    try:
        k = parse_output(output)[1]
    except ValueError:
        raise UserError(
            f"output: got {output!r}; allowed: {', '.join(OUTPUTS)}, {VIM_PREFIX}K (labels by "
            f"VIM, K in [1, {arch.num_classes}])"
        ) from None
    try:
        return check_vim(arch, k, "output", output) if k else 0
    except ValueError as e:
        raise UserError(str(e)) from None


def inference_fn(arch: Arch, variables: Any, output: str = "logits") -> Callable:
    """`image (1,H,W,3) float32 -> output`: logits, softmax probs or int32 labels (argmax, or
    VIM's for `labels_vimK`)."""
    check_export_output(arch, output)
    model = build_model(arch)
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}

    def fn(image: jax.Array) -> jax.Array:
        if output == "probs":
            return jax.nn.softmax(model_output(model, variables, image, "logits"), axis=-1)
        return model_output(model, variables, image, output)

    return fn


def check_ops(tfl: bytes, arch: Arch) -> dict[str, int]:
    """Op counts; UserError when the model is not builtin-only or lost its RESIZE_BILINEAR."""
    bad = tflite.non_builtin_ops(tfl)
    if bad:
        raise UserError(
            f"ops: the converted model holds non-builtin ops {', '.join(bad)}; "
            "allowed: TFLite builtin ops only"
        )
    ops = tflite.op_counts(tfl)
    if arch.decoder.name != "classifier" and "RESIZE_BILINEAR" not in ops:
        raise UserError(
            "ops: no RESIZE_BILINEAR in the converted model (upsampling was "
            "lowered to matmuls); allowed: models that upsample with "
            "models.layers.upsample_bilinear"
        )
    return ops


def convert_float(arch: Arch, variables: Any, output: str, example: np.ndarray) -> bytes:
    """The float .tflite of `arch` (input `image` shaped like `example`), ops checked."""
    tfl = tflite.convert(inference_fn(arch, variables, output), [example], [INPUT_NAME], [output])
    check_ops(tfl, arch)
    return tfl


def _fp16_recipe() -> list[dict]:
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    rm = recipe_manager.RecipeManager()
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        rm.add_weight_only_config(
            regex=".*",
            operation_name=qtyping.TFLOperationName[op],
            num_bits=16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
    return rm.get_quantization_recipe()


def quantize_tflite(tfl: bytes, quantize: str, calibration: np.ndarray | None = None) -> bytes:
    """Post-training quantization with ai-edge-quantizer (see the module docstring).

    `calibration` (N,H,W,3) float32, N >= 8, is required for `int8` only.
    """
    if quantize not in QUANTIZE:
        raise UserError(f"quantize: got {quantize!r}; allowed: {', '.join(QUANTIZE)}")
    if quantize == "none":
        return tfl
    from ai_edge_quantizer import quantizer, recipe

    recipes = {
        "fp16": _fp16_recipe,
        "dynamic_int8": recipe.dynamic_wi8_afp32,
        "int8": recipe.static_wi8_ai8,
    }
    q = quantizer.Quantizer(tfl, recipes[quantize]())
    if quantize != "int8":
        return bytes(
            q.quantize(enable_progress_bar=False, enable_progress_report=False).quantized_model
        )
    if calibration is None or len(calibration) < MIN_INPUTS:
        n = 0 if calibration is None else len(calibration)
        raise UserError(
            f"calibration: got {n} images; allowed: >= {MIN_INPUTS} representative images for int8"
        )
    data = {"serving_default": [{INPUT_NAME: img[None]} for img in calibration]}
    result = q.quantize(q.calibrate(data), enable_progress_bar=False, enable_progress_report=False)
    return bytes(result.quantized_model)


@functools.lru_cache(maxsize=8)
def _reference(arch: Arch, vim_k: int = 0) -> Callable:
    """Jitted float logits of `arch` and, for `vim_k`, its VIM labels (else None), variables as
    an argument: exporting one candidate in several variants (outputs, quantizations)
    compiles the reference once."""
    model = build_model(arch)

    def fn(variables: Any, image: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        logits = model.apply(variables, image, train=False)[0]
        vim = model_output(model, variables, image, f"{VIM_PREFIX}{vim_k}") if vim_k else None
        return logits, vim

    return jax.jit(fn)


def measure_parity(
    tfl: bytes, arch: Arch, variables: Any, output: str, inputs: np.ndarray, quantized: bool
) -> dict:
    """Exported model vs the float JAX model on `inputs` (N,H,W,3), one image at a time."""
    runner = tflite.Runner(tfl, threads=1)
    out_name = next(iter(runner.outputs))
    vim_k = check_export_output(arch, output)
    reference = _reference(arch, vim_k)
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    is_labels = output == "labels" or vim_k > 0
    max_diff, agree, full_agree, total = 0.0, 0, 0, 0
    for img in inputs:
        logits, vim = reference(variables, img[None])
        logits = np.asarray(logits, np.float64)
        got = runner(**{INPUT_NAME: img[None]})[out_name]
        if is_labels:
            labels = got
        else:
            want = logits if output == "logits" else np.asarray(jax.nn.softmax(logits, -1))
            max_diff = max(max_diff, float(np.max(np.abs(got - want))))
            labels = np.argmax(got, axis=-1)
        full_agree += int(np.sum(labels == np.argmax(logits, axis=-1)))
        # VIM: the exported program against the same program in JAX (the export's fault)
        agree += int(np.sum(labels == np.asarray(vim))) if vim_k else 0
        total += labels.size
    report = {
        "max_abs_diff": None if is_labels else max_diff,
        "argmax_agreement": (agree if vim_k else full_agree) / total,
        **({"full_argmax_agreement": full_agree / total, "vim_k": vim_k} if vim_k else {}),
        "n_inputs": int(len(inputs)),
        "compared": output,
        "reference": "float JAX model",
    }
    if quantized:
        report.update(
            passed=None,
            thresholds=None,
            note="quantized model: parity is reported, thresholds apply to float only",
        )
    else:
        ok = report["argmax_agreement"] >= MIN_ARGMAX_AGREEMENT and (
            is_labels or max_diff <= MAX_ABS_DIFF
        )
        report.update(
            passed=ok,
            thresholds={"max_abs_diff": MAX_ABS_DIFF, "argmax_agreement": MIN_ARGMAX_AGREEMENT},
        )
    return report


def _prepare_images(images: Any, arch: Arch, what: str) -> np.ndarray:
    """(N, H, W, 3) float32 at the arch's resolution from an array or a list of images."""
    if not isinstance(images, (list, tuple)):
        array = np.asarray(images, np.float32)
        images = [array] if array.ndim == 3 else list(array)
    out = []
    for img in images:
        img = np.asarray(img, np.float32)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise UserError(
                f"{what}: got an image of shape {img.shape}; allowed: (H, W, 3) float images"
            )
        if img.shape[:2] != tuple(arch.resolution):
            # Input preparation, not part of the model: antialiased resizing is fine here.
            img = np.asarray(jax.image.resize(img, (*arch.resolution, 3), "bilinear"))
        out.append(img)
    if len(out) < MIN_INPUTS:
        raise UserError(f"{what}: got {len(out)} images; allowed: >= {MIN_INPUTS}")
    return np.stack(out).astype(np.float32)


def dataset_images(data_cfg: Any, n: int, *, train: bool) -> list[np.ndarray]:
    """The first `n` images of the eval split (parity) or, `train`, of the training split
    (int8 calibration: up to `n`, at least `MIN_INPUTS`), both with the evaluation
    preprocessing: calibration ranges must be those of the images the model will see, not of
    augmented ones."""
    from data import pipeline
    from data.labels import IGNORE_INDEX

    def frames(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        # Clips (B, T, H, W, 3) of a video dataset: the models see frames one at a time.
        return batch["image"].reshape(-1, *batch["image"].shape[-3:]), batch["mask"].reshape(
            -1, *batch["mask"].shape[-2:]
        )

    split = data_cfg.train_split if train else None
    got: list[np.ndarray] = []
    for batch in pipeline.eval_batches(data_cfg, min(n, 32), split=split):
        images, masks = frames(batch)
        # Padded rows of the last batch are fully ignored (mask 255): not real images.
        got += list(images[(masks != IGNORE_INDEX).reshape(len(masks), -1).any(1)])
        if len(got) >= n:
            break
    need = MIN_INPUTS if train else n
    if len(got) < need:
        raise UserError(
            f"data: split of {data_cfg.name!r} has {len(got)} images; allowed: "
            f">= {need} for the {'int8 calibration' if train else 'parity check'}"
        )
    return got[:n]


def default_data_config() -> Any:
    """toy_scenes (generated into the tfds data dir on first use): parity without a run."""
    from data.pipeline import default_data_config as dflt

    return dflt()


def check_out_path(out_path: str | Path) -> Path:
    """UserError unless `out_path` ends in .tflite and its folder exists and is writable."""
    out = Path(out_path)
    if out.suffix != ".tflite":
        raise UserError(f"out: got {str(out)!r}; allowed: a path ending in .tflite")
    if out.is_dir():
        raise UserError(f"out: {str(out)!r} is a directory; allowed: a .tflite file path")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(
            f"out: folder {str(parent)!r} does not exist; allowed: a path in an "
            "existing, writable folder"
        )
    try:  # a real probe: permission bits say nothing for root or read-only mounts
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise UserError(
            f"out: folder {str(parent)!r} is not writable ({e.strerror}); "
            "allowed: a path in an existing, writable folder"
        ) from None
    return out


def _write_together(files: dict[Path, bytes]) -> None:
    """`nas.io.write_together`, a failed write reported as a UserError naming the path."""
    try:
        write_together(files)
    except OSError as e:
        raise UserError(
            f"out: cannot write {str(next(iter(files)))!r} ({e.strerror}); "
            "allowed: a path in an existing, writable folder"
        ) from None


def export_candidate(
    arch: Arch,
    variables: Any,
    out_path: str | Path,
    *,
    quantize: str = "none",
    output: str = "logits",
    parity_inputs: Sequence[np.ndarray] | np.ndarray | None = None,
    force: bool = False,
    calibration_inputs: Sequence[np.ndarray] | np.ndarray | None = None,
    data_cfg: Any = None,
    calibration_images: int = CALIBRATION_IMAGES,
    predicted_ms: float | None = None,
    companion_sets: Sequence[Sequence[Arch]] | None = None,
    reference_ms: float | None = None,
    anchors: dict[str, float] | None = None,
) -> dict:
    """Exports `arch` with `variables` to `out_path` (.tflite) and `PATH.json`; returns the
    report. Parity images default to the first 8 images of `data_cfg`'s eval split, int8
    calibration images to the first `calibration_images` of its training split, without
    augmentation (toy_scenes when `data_cfg` is None). `predicted_ms`: the latency a
    table predicted for this program, reported beside the measured one; `companion_sets`:
    the whole models it is timed among, one chunk per set (default
    `nas.latency.context.companion_sets(arch)`; empty: timed alone); `reference_ms`: the
    predicting table's reference scale, so that the measurement is put on it (`measured_ms`;
    the raw figure stays `latency_ms`), by `anchors` where given (companions that are the
    table's calibration models: `nas.latency.context.anchor_sets`). See the module docstring."""
    if quantize not in QUANTIZE:
        raise UserError(f"quantize: got {quantize!r}; allowed: {', '.join(QUANTIZE)}")
    arch.validate()
    check_export_output(arch, output)
    out = check_out_path(out_path)
    if parity_inputs is None or (quantize == "int8" and calibration_inputs is None):
        data_cfg = default_data_config() if data_cfg is None else data_cfg
    if parity_inputs is None:
        parity_inputs = dataset_images(data_cfg, MIN_INPUTS, train=False)
    parity_inputs = _prepare_images(parity_inputs, arch, "parity_inputs")
    calibration = None
    if quantize == "int8":
        if calibration_inputs is None:
            calibration_inputs = dataset_images(data_cfg, calibration_images, train=True)
        calibration = _prepare_images(calibration_inputs, arch, "calibration_inputs")

    example = parity_inputs[:1]
    tfl = quantize_tflite(convert_float(arch, variables, output, example), quantize, calibration)
    ops = check_ops(tfl, arch)
    parity = measure_parity(
        tfl, arch, variables, output, parity_inputs, quantized=quantize != "none"
    )
    if parity["passed"] is False and not force:
        raise UserError(
            f"parity: max_abs_diff {parity['max_abs_diff']}, argmax_agreement "
            f"{parity['argmax_agreement']:.5f} on {parity['n_inputs']} inputs; allowed: "
            f"max_abs_diff <= {MAX_ABS_DIFF} and argmax_agreement >= {MIN_ARGMAX_AGREEMENT} "
            "(nothing written; --force writes it anyway)"
        )
    from nas.latency import context

    if companion_sets is None:
        companion_sets = context.companion_sets(arch)
    latency = tflite.benchmark(
        tfl,
        {INPUT_NAME: example},
        threads=1,
        companion_sets=companion_sets,
        reference_ms=reference_ms,
        anchors=anchors,
        # anchors are timed as the table calibrated them (the winner's output, logits or
        # labels); other companions as logits
        output=output if anchors else "logits",
    )
    measured = latency.get("scaled_median_ms", latency["median_ms"])
    report = {
        "segnas_version": SEGNAS_VERSION,
        "path": str(out),
        "bytes": len(tfl),
        "ops": ops,
        "quantize": quantize,
        "output": output,
        "arch": arch.to_dict(),
        "arch_id": arch.id,
        "input": {"name": INPUT_NAME, "shape": [1, *arch.resolution, 3], "dtype": "float32"},
        "parity": parity,
        "latency_ms": latency["median_ms"],
        "latency": {
            **latency,
            "runtime": "ai-edge-litert Interpreter + XNNPACK",
            "measured_ms": measured,
            **(
                {
                    "predicted_ms": round(predicted_ms, 4),
                    "error_pct": round(100 * (predicted_ms / measured - 1), 2),
                }
                if predicted_ms is not None
                else {}
            ),
        },
        "forced": bool(parity["passed"] is False and force),
    }
    if report["forced"]:
        print(
            "!" * 78 + "\nWARNING: --force: writing a model that FAILED the parity check "
            f"({out}).\nIts outputs differ from the JAX model; do not deploy it.\n" + "!" * 78,
            file=sys.stderr,
        )
    _write_together(
        {
            out: tfl,
            out.with_suffix(".json"): (
                json.dumps(report, indent=2, sort_keys=True) + "\n"
            ).encode(),
        }
    )
    return report


def load_run(workdir: str | Path) -> tuple[Arch, Any, Any]:
    """(arch, variables, data config) of a `segnas train` run: its newest checkpoint (EMA
    params when the run evaluated with them, via `nas.train.checkpoint.load_run`) and the `data`
    section of its `config.json`, whose eval split the parity check then uses."""
    import ml_collections

    from nas.train import checkpoint

    arch, variables, _ = checkpoint.load_run(workdir)
    path = Path(workdir) / "config.json"
    try:
        data = json.loads(path.read_text())["data"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"workdir: {str(path)!r} is missing or holds no data section "
            f"({type(e).__name__}); allowed: the config.json a `segnas train` run "
            "writes"
        ) from None
    return arch, variables, ml_collections.ConfigDict(data)
