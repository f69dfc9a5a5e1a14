"""`segnas pareto --workdir DIR [--storage URL] [--winners] [--wandb]`: re-render a search.

Reads the study (the sweep's memory) and the config the search recorded in DIR/search.json,
and rewrites trials.jsonl, pareto.json, pareto.png, pareto.html and the summary table; with
`--winners` it also exports the Pareto members not yet in DIR/winners/, with `--wandb` it logs
a fresh W&B summary run. Works while a search is still running (a snapshot).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import optuna
from ml_collections import ConfigDict

from nas.cli.common import Parser
from nas.cli.search import SEARCH_JSON
from nas.errors import UserError
from nas.search import report
from nas.search import storage as search_storage
from nas.search.spec import spec_from_config


def main(argv: list[str]) -> int:
    """`segnas pareto`: re-renders a search workdir's outputs from its study."""
    p = Parser(prog="segnas pareto", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True, help="a `segnas search` workdir")
    p.add_argument("--storage", help="storage URL (default: $SEGNAS_STORAGE, else the search's)")
    p.add_argument("--storage-file", type=Path, help="a file whose first line is the storage URL")
    p.add_argument("--winners", action="store_true", help="export missing Pareto winners")
    p.add_argument("--wandb", action="store_true", help="log a W&B summary run")
    args = p.parse_args(argv)
    record = args.workdir / SEARCH_JSON
    try:
        saved = json.loads(record.read_text())
    except FileNotFoundError:
        raise UserError(
            f"workdir: {str(record)!r} not found; allowed: the workdir of a `segnas search` run"
        ) from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"workdir: cannot read {str(record)!r} ({e}); allowed: the search.json "
            "a `segnas search` run wrote"
        ) from None
    config = ConfigDict(saved["config"])
    workdir = args.workdir.resolve()
    spec = spec_from_config(config, workdir)
    url = search_storage.storage_from(args.storage, args.storage_file) or saved["storage"]
    if url == saved["storage"] and ":***@" in url:  # masked when the search wrote it
        raise UserError(
            f"storage: the search recorded {url!r}, whose password segnas never writes; "
            f"allowed: the URL with its password in --storage, --storage-file or "
            f"${search_storage.STORAGE_ENV}"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = search_storage.open_storage(
            url,
            heartbeat_interval=spec.heartbeat_interval,
            grace_period=spec.grace_period,
            max_retry=spec.max_retry,
        )
    try:
        study = optuna.load_study(study_name=spec.study_name, storage=storage)
    except KeyError:
        raise UserError(
            f"storage: no study {spec.study_name!r} in {search_storage.mask_url(url)!r}; "
            "allowed: the "
            "storage of this workdir's search"
        ) from None
    result = report.render(
        study,
        spec,
        workdir,
        winners=args.winners,
        wandb_cfg=config.get("wandb") if args.wandb else None,
    )
    if result["wandb_dir"]:
        print(f"W&B summary run: {result['wandb_dir']} (offline: `wandb sync` it)")
    return 0
