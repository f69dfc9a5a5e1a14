"""Flax Linen modules of segnas: layers, encoders, decoders and the segmenter.

No training and no I/O here, and no imports from `nas` or `data`.
"""
