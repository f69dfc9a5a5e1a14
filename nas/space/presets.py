"""Named points of the space (published models) and named spaces (what a search may pick).

Presets are plain `Arch` values; tests pin their parameter counts against the reference
implementations' own counts (the README's preset table cites them), so an encoder that drifts
from its published definition fails loudly.
"""

from __future__ import annotations

from models.encoders import ENCODERS
from nas.space.arch import Arch
from nas.space.space import Space

_IMAGENET_RES = {
    "efficientnet_lite0": 224,
    "efficientnet_lite1": 240,
    "efficientnet_lite2": 260,
    "efficientnet_lite3": 280,
    "efficientnet_lite4": 300,
}


def _arch(encoder: str, decoder: dict, **rest) -> Arch:
    return Arch.from_dict({"encoder": {"name": encoder}, "decoder": decoder, **rest})


PRESETS: dict[str, Arch] = {
    # Seed 000's starting point: a MobileNetV3 U-Net at 256², bilinear decoder, depthwise convs.
    "seed000_baseline": _arch(
        "mobilenet_v3_large",
        {"name": "unet", "kind": "bilinear"},
        conv={"type": "depthwise"},
        resolution=[256, 256],
        num_classes=2,
    ),
    # Seed 000's starred choices (Table 1): EfficientNet-Lite at width 1.0, MLP decoder,
    # group convolutions, 512².
    "seed000_final": _arch(
        "efficientnet_lite0",
        {"name": "unet", "kind": "mlp"},
        conv={"type": "group", "group_size": 8},
        resolution=[512, 512],
        num_classes=2,
    ),
    # MobileNetV3 paper's segmentation head: last stage dilated (output stride 16), LR-ASPP
    # with 128 inter channels, Cityscapes' 19 classes at full 1024x2048.
    "lraspp_mobilenet_v3_large": _arch(
        "mobilenet_v3_large",
        {"name": "lraspp"},
        output_stride=16,
        resolution=[1024, 2048],
        num_classes=19,
    ),
    "mobilenet_v3_large_imagenet": _arch(
        "mobilenet_v3_large", {"name": "classifier"}, resolution=[224, 224], num_classes=1000
    ),
    "mobilenet_v3_small_imagenet": _arch(
        "mobilenet_v3_small", {"name": "classifier"}, resolution=[224, 224], num_classes=1000
    ),
    **{
        f"{enc}_imagenet": _arch(enc, {"name": "classifier"}, resolution=[r, r], num_classes=1000)
        for enc, r in _IMAGENET_RES.items()
    },
    # torchvision's ShuffleNetV2 (conv5 in the classifier) and MobileNetV2 ImageNet models.
    **{
        f"shufflenet_v2_x{w:.1f}_imagenet".replace(".", "_"): Arch.from_dict(
            {
                "encoder": {"name": "shufflenet_v2", "width": w},
                "decoder": {"name": "classifier"},
                "resolution": [224, 224],
                "num_classes": 1000,
            }
        )
        for w in (0.5, 1.0, 1.5, 2.0)
    },
    "mobilenet_v2_imagenet": _arch(
        "mobilenet_v2", {"name": "classifier"}, resolution=[224, 224], num_classes=1000
    ),
    # Seed 001's four Cityscapes models: ShuffleNetV2 (the paper's segmentation variant, width
    # 1.0) or MobileNetV2, DeepLabV3 basic or DPC head, output stride 16, 19 classes, at the
    # paper's 769x769 crop (not divisible by 16: TF "SAME" sizes, a 49x49 feature map).
    **{
        f"deeplabv3_{label}_{cell}": _arch(
            encoder,
            {"name": "deeplabv3", "cell": cell},
            output_stride=16,
            resolution=[769, 769],
            num_classes=19,
        )
        for label, encoder in (
            ("shufflenet_v2", "shufflenet_v2_seg"),
            ("mobilenet_v2", "mobilenet_v2"),
        )
        for cell in ("basic", "dpc")
    },
    # Seed 002's ADE20K models: StrideFormer with AAM (tiny, fused at 1/16) or AAMSx8 (base,
    # at 1/8), 150 classes, 512x512. Parameters equal the released code's count (the paper's
    # 1.44 / 5.71 M do not follow from it; the README says why).
    "pp_mobileseg_tiny": _arch(
        "strideformer_tiny",
        {"name": "aam", "variant": "aam"},
        resolution=[512, 512],
        num_classes=150,
    ),
    "pp_mobileseg_base": _arch(
        "strideformer_base",
        {"name": "aam", "variant": "aamsx8"},
        resolution=[512, 512],
        num_classes=150,
    ),
}

# Published figures beside each preset, for the README table and tests. `None`: no figure.
PUBLISHED: dict[str, dict[str, float | None]] = {
    "mobilenet_v3_large_imagenet": {"params": 5_483_032, "macs": 216.59e6},
    "mobilenet_v3_small_imagenet": {"params": 2_542_856, "macs": 56.51e6},
    "efficientnet_lite0_imagenet": {"params": 4_652_008, "macs": None},
    # torchvision's documented num_params and _ops (GMACs, rounded as torchvision prints them).
    "shufflenet_v2_x0_5_imagenet": {"params": 1_366_792, "macs": 0.04e9},
    "shufflenet_v2_x1_0_imagenet": {"params": 2_278_604, "macs": 0.145e9},
    "shufflenet_v2_x1_5_imagenet": {"params": 3_503_624, "macs": 0.296e9},
    "shufflenet_v2_x2_0_imagenet": {"params": 7_393_996, "macs": 0.583e9},
    "mobilenet_v2_imagenet": {"params": 3_504_872, "macs": 0.301e9},
    # Counted from the released PaddleSeg code, 150 classes (the paper prints 1.44 / 5.71 M).
    "pp_mobileseg_tiny": {"params": 1_492_298, "macs": None},
    "pp_mobileseg_base": {"params": 5_943_878, "macs": None},
}

SPACES: dict[str, Space] = {
    # Seed 000's joint space (Table 1 rows): encoder family, decoder, conv type, width, resolution.
    "seed000": Space.from_dict(
        {
            "encoder": {
                "name": ["mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_lite0"],
                "width": [1.0, 1.5, 2.0],
            },
            "decoder": {"name": ["unet"], "kind": ["bilinear", "channel_attention", "mlp"]},
            "conv": {"type": ["depthwise", "group"], "group_size": [8]},
            "resolution": [[s, s] for s in (256, 384, 512, 640)],
            "num_classes": 2,
        }
    ),
    # Seed 001's joint space: ShuffleNetV2 (its segmentation variant) or MobileNetV2 at
    # torchvision's four widths, a DeepLabV3 head with the basic or the DPC cell, output
    # stride 8, 16 or 32, Cityscapes' 19 classes. The paper trains 769x769 crops at OS 16.
    "seed001": Space.from_dict(
        {
            "encoder": {
                "name": ["shufflenet_v2_seg", "mobilenet_v2"],
                "width": [0.5, 1.0, 1.5, 2.0],
            },
            "decoder": {"name": ["deeplabv3"], "cell": ["basic", "dpc"]},
            "resolution": [[s, s] for s in (513, 769)],
            "output_stride": [8, 16, 32],
            "num_classes": 19,
        }
    ),
    # Seed 002's space: StrideFormer tiny or base at widths 0.75 / 1.0, the AAM (fused at 1/16)
    # or AAMSx8 (at 1/8) with Table 4's two switches, ADE20K's 150 classes at 384² or 512²
    # (the paper trains 512² crops). The output stride is the AAM's 32.
    "seed002": Space.from_dict(
        {
            "encoder": {"name": ["strideformer_tiny", "strideformer_base"], "width": [0.75, 1.0]},
            "decoder": {
                "name": ["aam"],
                "variant": ["aam", "aamsx8"],
                "ensemble_vote": [True, False],
                "final_semantics": [True, False],
            },
            "resolution": [[s, s] for s in (384, 512)],
            "output_stride": [32],
            "num_classes": 150,
        }
    ),
    # Every encoder and head segnas has, for latency tables that cover all of them. Regular
    # (ungrouped) convs are legal but left out: on expanded channels they are 10-100x the
    # cost of the rest, a search would not keep them.
    "full": Space.from_dict(
        {
            "encoder": {
                "name": list(ENCODERS),
                # ShuffleNetV2 has models at these four widths only (torchvision's).
                "width": [0.5, 1.0, 1.5, 2.0],
                "depth": [0.5, 1.0, 1.5],
            },
            "decoder": {
                "name": ["unet", "lraspp", "deeplabv3", "aam"],
                "kind": ["bilinear", "channel_attention", "mlp"],
                "cell": ["basic", "dpc"],
                "variant": ["aam", "aamsx8"],
            },
            "conv": {"type": ["depthwise", "group"], "group_size": [4, 8, 16]},
            "resolution": [[s, s] for s in (128, 256, 384, 512)],
            "output_stride": [8, 16, 32],
            "num_classes": 2,
        }
    ),
}


def preset(name: str) -> Arch:
    """The preset `name`; ValueError naming the allowed names otherwise."""
    if name not in PRESETS:
        raise ValueError(f"preset: got {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]


def space(name: str) -> Space:
    """The space `name` of SPACES; ValueError naming the allowed names otherwise."""
    if name not in SPACES:
        raise ValueError(f"space: got {name!r}; allowed: {', '.join(SPACES)}")
    return SPACES[name]
