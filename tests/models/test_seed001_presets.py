"""Seed 001's four presets: exact parameter counts, model size and GFLOPs beside the paper's.

Expected values are literals: the parameter counts of the reference code's models (the
ShuffleNetV2 segmentation variant or TF-slim MobileNetV2 to its 320-channel layer, plus the
DeepLabV3 basic / DPC head, 19 classes, BN scale and offset counted), and the paper's Table 2
(GFLOPs at 640x360) and Table 5 (GFLOPs and MB at 224x224). GFLOPs are 2 x MACs of the convs
and dense layers at TF "SAME" output sizes; the paper's counter sits ~0.8 % above (it counts
bias and BN ops too), so the check allows 2 %.
"""

from __future__ import annotations

import pytest

from nas.cost import cost
from nas.space.presets import preset

# preset: (params, paper MB, paper GFLOPs at 224², paper GFLOPs at 640x360)
ROWS = {
    "deeplabv3_shufflenet_v2_basic": (1_148_249, 4.6, 0.47, 2.18),
    "deeplabv3_shufflenet_v2_dpc": (1_506_121, 6.0, 0.65, 3.05),
    "deeplabv3_mobilenet_v2_basic": (2_113_043, 8.4, 1.00, 4.69),
    "deeplabv3_mobilenet_v2_dpc": (2_506_195, 9.9, 1.18, 5.56),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_seed001_preset_counts(name):
    params, mb, gflops_224, gflops_640 = ROWS[name]
    arch = preset(name)
    assert (arch.output_stride, arch.num_classes, arch.resolution) == (16, 19, (769, 769))
    assert cost(arch)["params"] == params
    assert abs(4 * params / 1e6 - mb) <= 0.15  # fp32 size against the paper's MB
    for res, paper in (((224, 224), gflops_224), ((360, 640), gflops_640)):
        gflops = 2 * cost(arch.replace(resolution=res))["macs"] / 1e9
        assert abs(gflops / paper - 1) <= 0.02, (res, gflops, paper)
