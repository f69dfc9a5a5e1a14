"""The joint search space: `Arch` (one point), `Space` (what a search may pick), named presets,
the Optuna encoding of the space, and `build_model`, the one bridge from nas to models."""
