"""Seed 001 (An efficient solution for semantic segmentation: ShuffleNet V2 with atrous
separable convolutions) configs: `table5.py` (GFLOPs, size and on-device latency of the four
encoder x head models at 224x224). `segnas table --config experiments/seed001/table5.py` prints
it beside the paper's values."""
