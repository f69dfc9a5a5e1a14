"""A search config for tests: tiny space, fake evaluator (tests/nas/search/fakes.py).

segnas search --config tests/nas/search/fake_search_config.py --workdir /tmp/x  (from the repo
root, or with PYTHONPATH=<repo root>, so that `tests.nas.search.fakes` imports)
"""

from ml_collections import ConfigDict

from nas.space.encoding import space_config
from nas.space.space import Space, resolutions


def get_config(arg: str | None = None) -> ConfigDict:
    space = Space.from_dict(
        {
            "encoder": {"name": ["mobilenet_v3_small", "mobilenet_v3_large"], "width": [0.5, 1.0]},
            "decoder": {"name": ["unet"], "kind": ["bilinear", "mlp", "channel_attention"]},
            "resolution": resolutions((32, 64)),
            "num_classes": 3,
        }
    )
    return ConfigDict(
        {
            "train": {"steps": 6},
            "fake": {
                "step_time": 0.02,
                "eval_every": 2,
                "diverge_decoder": "",
                "raise_decoder": "",
                "timeout_decoder": "",
                "gate": "",  # a file the test writes step allowances to (fakes.py)
            },
            "wandb": {"mode": "disabled", "project": "segnas-tests", "group": "", "name": ""},
            "search": {
                "study_name": "fake",
                "strategy": "random",
                "space": space_config(space),
                "baseline": "",
                "num_trials": 8,
                "seed": 0,
                "objectives": ("val/miou", "params"),
                "latency_tables": {},
                "max_params": None,
                "max_bytes": None,
                "max_latency_ms": {},
                "prune": {"enabled": False, "min_trials": 2, "warmup_steps": 0},
                "heartbeat_interval": 5,
                "grace_period": 10,
                "max_retry": 2,
                "evaluator": "tests.nas.search.fakes:fake_train",
                "winners": {"max_count": 0, "quantize": "none", "output": "logits"},
            },
        }
    )
