"""Flax Linen modules of segnas: layers, encoders, decoders and the segmenter. No training, no I/O."""
