"""The architecture search: the sweep spec read from a config, samplers, the ask -> train -> tell
driver over an Optuna study, its storage and workers, trial records, the Pareto front, winners
and the report."""
