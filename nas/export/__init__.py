"""Export to TFLite: the policy (ops, quantization, parity, report) over low-level conversion and
interpreter plumbing (`tflite`)."""
