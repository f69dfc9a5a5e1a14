"""Project-wide test fixtures.

`_no_downloads`: an accidental tfds download does not fail offline, it hangs on DNS retries
for minutes, so every test runs with tfds'
download entry points replaced by one that raises at once. Tests that exercise a download
builder on fake files patch `download_and_extract` themselves (their patch wins).

`_light_latency_protocol`: an export or a search winner is timed among 5 sets of 7 companion
models (`nas.latency.context`), and converting those ~25 models took 190 of the 210 s of a
tiny model's export test, once per worker and resolution. Tests that check something else
(ops, parity, files, exit codes) time their model among one set of 2 companions; the tests
of the protocol itself (tests/nas/latency/ and those marked `latency_protocol`) keep it.
"""

from __future__ import annotations

import sys

import pytest

LIGHT_COMPANIONS = 2  # companions per set under `_light_latency_protocol` (one set)


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
def _light_latency_protocol(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    if request.node.get_closest_marker("latency_protocol") or "tests/nas/latency/" in str(
        request.node.path.as_posix()
    ):
        return
    from nas.latency import context

    def light(arch, space=None, sets=1):
        return (context.companions_for(arch, space, k=LIGHT_COMPANIONS, seed=0),)

    monkeypatch.setattr(context, "companion_sets", light)
