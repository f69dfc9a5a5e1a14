"""`segnas search` with the fake cost function (nas.cost traces a real model: seconds each),
for tests that run the command in a subprocess: python tests/search/run_fake_search.py ARGS."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import search_fakes  # noqa: E402

import nas.cost  # noqa: E402
from nas.cli import main as cli  # noqa: E402

nas.cost.cost = search_fakes.fake_cost
sys.exit(cli.main(["search", *sys.argv[1:]]))
