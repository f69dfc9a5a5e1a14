"""Project-wide test fixtures.

`_no_downloads`: an accidental tfds download does not fail offline, it hangs on DNS retries
for minutes, so every test runs with tfds'
download entry points replaced by one that raises at once. Tests that exercise a download
builder on fake files patch `download_and_extract` themselves (their patch wins).

`_fresh_model_timers`: `nas.latency.context.model_timer` keeps converted models for the
process; a test that patches `measure.make_timer` would otherwise leave its fake timers there
for the next test.
"""

from __future__ import annotations

import sys

import pytest


def _refuse(*args: object, **kwargs: object) -> None:
    raise RuntimeError(
        f"tests must not download: tfds tried to fetch {args[1] if len(args) > 1 else kwargs!r}"
    )


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only when tfds is loaded: importing it here would slow every test session down.
    tfds = sys.modules.get("tensorflow_datasets")
    if tfds is None:
        return
    for method in ("download", "download_and_extract"):
        monkeypatch.setattr(tfds.download.DownloadManager, method, _refuse)


@pytest.fixture(autouse=True)
def _fresh_model_timers():
    yield
    context = sys.modules.get("nas.latency.context")  # only when loaded, as above
    if context is not None:
        context.model_timer.cache_clear()
