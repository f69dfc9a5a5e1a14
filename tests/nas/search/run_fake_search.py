"""`segnas search` with the fake cost function (nas.cost traces a real model: seconds each),
for tests that run the command in a subprocess, from the repo root:
python -m tests.nas.search.run_fake_search ARGS."""

import sys

import nas.cost
from nas.cli import main as cli
from tests.nas.search import fakes

nas.cost.cost = fakes.fake_cost
sys.exit(cli.main(["search", *sys.argv[1:]]))
