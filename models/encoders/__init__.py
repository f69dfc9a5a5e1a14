"""Encoders: each maps an image batch to `{stride: feature}` (the last feature at each stride)."""
