"""Decoders and heads: each maps `{stride: feature}` and the input size to `(logits, aux)`."""
