"""Seed 000 (Efficient Heterogeneous Video Segmentation at the Edge) configs, one per paper table:
`table1.py` (the ablation: a search and its table), `table3.py` (EfficientNet-Lite vs
MobileNetV3 latency on the XNNPACK CPU). `segnas table --config experiments/seed000/tableK.py`
prints each beside the paper's values."""
