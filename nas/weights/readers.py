"""The readers of weight files, one per container, none needing the framework that wrote it.

`read(path, fmt, field)` gives `{name: numpy array}`:
- `timm`, `torchvision`: a `.safetensors` file (a PyTorch state_dict converted with
  `safetensors.torch.save_file`), read with `safetensors.numpy` (no torch);
- `paddle`: a `.pdparams` file, Paddle's pickled dict of name -> numpy array (no paddle);
  unpickled with a restricted unpickler that only builds numpy arrays and plain containers, so
  a file cannot run code;
- `keras`: a legacy `.h5` (a `model.save("x.h5")` model or a weights-only file, Keras 2 or 3),
  read with h5py, or a `.keras` archive, loaded with the installed Keras / TensorFlow.
  Keras names are `layer/variable` in Keras 3's spelling; Keras 2 names (`Conv/BatchNorm`,
  `expanded_conv_1/squeeze_excite/Conv`, `depthwise_kernel:0`) are normalised to them.
Every failure is a `UserError` naming `field` (the config field or flag that gave the path).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np

from nas.errors import UserError

FORMATS: dict[str, tuple[str, ...]] = {
    "keras": (".h5", ".keras"),
    "timm": (".safetensors",),
    "torchvision": (".safetensors",),
    "paddle": (".pdparams",),
}


def check_format(fmt: object, field: str) -> str:
    """`fmt` if it is a known format, else a UserError naming `field` and the allowed ones."""
    if fmt not in FORMATS:
        raise UserError(f"{field}: got {fmt!r}; allowed: {', '.join(FORMATS)}")
    return str(fmt)


def read(path: str | Path, fmt: str, field: str) -> dict[str, np.ndarray]:
    """The tensors of the `fmt` file at `path` (module docstring)."""
    fmt = check_format(fmt, f"{field} format")
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{field}: {str(path)!r} is not a file; allowed: a local {fmt} weight file")
    if p.suffix not in FORMATS[fmt]:
        raise UserError(
            f"{field}: {str(path)!r} is not a {fmt} file; allowed: {' or '.join(FORMATS[fmt])}"
        )
    try:
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(p)))
        if p.suffix == ".pdparams":
            return _read_pickle(p)
        if p.suffix == ".h5":
            return _read_h5(p)
        return _read_keras(p)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file is the user's, one line
        raise UserError(f"{field}: {str(path)!r} could not be read as {fmt}: {e}") from None


class _NumpyOnly(pickle.Unpickler):
    """Builds numpy arrays and nothing else that could run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array")
        return super().find_class(module, name)


def _read_pickle(p: Path) -> dict[str, np.ndarray]:
    with p.open("rb") as f:
        d = _NumpyOnly(f).load()
    if not isinstance(d, dict):
        raise UserError(f"{p}: holds a {type(d).__name__}; a .pdparams file is a dict of arrays")
    # Paddle files may carry non-tensor entries (e.g. StructuredToParameterName@@)
    return {str(k): np.asarray(v) for k, v in d.items() if isinstance(v, np.ndarray)}


def keras_name(layer: str, variable: str) -> str:
    """`layer/variable` in Keras 3's spelling (Keras 2's `Conv/BatchNorm` -> `conv_bn`,
    `expanded_conv_1/squeeze_excite/Conv_1` -> `expanded_conv_1_squeeze_excite_conv_1`,
    `depthwise_kernel:0` -> `kernel`)."""
    layer = re.sub(r"/batchnorm$", "_bn", layer.lower()).replace("/", "_")
    variable = variable.split("/")[-1].split(":")[0]
    return f"{layer}/{'kernel' if variable == 'depthwise_kernel' else variable}"


def _read_h5(p: Path) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    with h5py.File(p, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in g.attrs:
            raise UserError(
                f"{p}: not a legacy Keras .h5 (no layer_names; a Keras 3 .weights.h5 "
                "needs its model): save the model with model.save('x.keras') or as .h5"
            )
        for layer in g.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else str(layer)
            for w in g[layer].attrs.get("weight_names", []):
                w = w.decode() if isinstance(w, bytes) else str(w)
                out[keras_name(layer, w)] = np.asarray(g[layer][w])
    return out


def _read_keras(p: Path) -> dict[str, np.ndarray]:
    import keras

    model = keras.saving.load_model(str(p), compile=False)
    return {
        keras_name(layer.name, w.name): np.asarray(w.numpy())
        for layer in model.layers  # keras.applications models are flat
        for w in layer.weights
    }
