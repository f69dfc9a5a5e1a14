"""Fixtures of the search driver's tests: the fake config of fake_search_config.py."""

import pytest

from tests.nas.search import fake_search_config


@pytest.fixture
def config():
    return fake_search_config.get_config()
