"""Project-wide test fixtures.

`_no_downloads`: an accidental tfds download does not fail offline, it hangs on DNS retries
for minutes, so every test runs with tfds'
download entry points replaced by one that raises at once. Tests that exercise a download
builder on fake files patch `download_and_extract` themselves (their patch wins).
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
