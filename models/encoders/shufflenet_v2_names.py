"""Where ShuffleNetV2's encoder layers live in torchvision weight files (`shufflenet_v2_x0_5`
... `shufflenet_v2_x2_0`).

`NAMES["torchvision"](variant, config)` lists the encoder's `Layer`s (models/encoders/
naming.py): `conv1.0` / `conv1.1` the stem, `stageS.I` unit I of stage S (S = 2, 3, 4), whose
downsampling unit holds `branch1` (depthwise `.0` + BN `.1`, 1x1 `.2` + BN `.3`) and every unit
`branch2` (1x1 `.0` + BN `.1`, depthwise `.3` + BN `.4`, 1x1 `.5` + BN `.6`; the ReLUs hold no
tensors). conv5 and fc come after stage 4: segnas's ImageNet classifier, not its encoder, so
`IGNORED` lists them.

The seg variant (seed 001) has the same names; its stage-2 downsampling unit is wider (its
first main-branch 1x1 is in -> in), so a torchvision file does not fit it: the importer names
the misfit tensor, or the family the file fits. Files in this naming for the seg variant (a
PyTorch port of seed 001's encoder) load as they are.

torchvision pads its stride-2 convs and max pool by one pixel on every side, segnas pads TF
"SAME" (none before, one after on even sizes): imported weights see inputs shifted by one
pixel at those layers, as with the other torchvision imports.
"""

from __future__ import annotations

from collections.abc import Callable

from models.encoders import shufflenet_v2
from models.encoders.naming import Layer, conv_bn


def torchvision(variant: str, config: shufflenet_v2.ShuffleNetV2Config) -> list[Layer]:
    """The encoder in torchvision's naming (module docstring)."""
    layers = conv_bn("stem", "conv1.0", "conv1.1")
    for u in shufflenet_v2.unit_plan(variant, config.width, 32):
        ours, p = f"stage{u.stage}_{u.index}", f"stage{u.stage}.{u.index}"
        if u.index == 0:
            layers += conv_bn(f"{ours}/shortcut_spatial", f"{p}.branch1.0", f"{p}.branch1.1", True)
            layers += conv_bn(f"{ours}/shortcut_project", f"{p}.branch1.2", f"{p}.branch1.3")
        layers += conv_bn(f"{ours}/expand", f"{p}.branch2.0", f"{p}.branch2.1")
        layers += conv_bn(f"{ours}/spatial", f"{p}.branch2.3", f"{p}.branch2.4", True)
        layers += conv_bn(f"{ours}/project", f"{p}.branch2.5", f"{p}.branch2.6")
    return layers


NAMES: dict[str, Callable[[str, shufflenet_v2.ShuffleNetV2Config], list[Layer]]] = {
    "torchvision": torchvision,
}
# The ImageNet classifier's names (conv5 and the final Linear): in the file, not the encoder.
IGNORED: dict[str, tuple[str, ...]] = {"torchvision": ("conv5.", "fc.")}
