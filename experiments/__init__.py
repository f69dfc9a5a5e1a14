"""Experiment configs: each module has `get_config(arg=None) -> ml_collections.ConfigDict`,
loaded with `ml_collections.config_flags` (`--config experiments/NAME.py[:ARG]`); its
docstring holds the launch command and the numbers to expect."""
