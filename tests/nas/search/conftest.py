"""Shared helpers for the search driver's tests: a fake config and an in-process sweep."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # search_fakes, fake_search_config

import fake_search_config  # noqa: E402
import search_fakes  # noqa: E402

from nas.search import driver as search  # noqa: E402
from nas.search import prepare, report


@pytest.fixture
def config():
    return fake_search_config.get_config()


def run_sweep(config, workdir, *, evaluate=search_fakes.fake_train, render=True):
    """One in-process worker with the fake evaluator and cost, then the outputs."""
    ctx = prepare.prepare(config, workdir, evaluate=evaluate, cost_fn=search_fakes.fake_cost)
    search.run_worker(ctx)
    if render:
        report.render(ctx.study, ctx.spec, ctx.workdir, winners=False,
                              log=lambda *a: None)
    return ctx
