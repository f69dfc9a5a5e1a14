"""Two machines (two `segnas search` commands with separate workdirs) on one real PostgreSQL
server, to the end of a small study: no trial lost or duplicated, and the database password
(which holds `@`, `%` and `/`) never shown.

Needs a server: `.ci/postgres start DIR` prints the URL to export as SEGNAS_TEST_POSTGRES_URL
(`.ci/run` does this, and sets SEGNAS_REQUIRE_POSTGRES=1 so that CI fails instead of skipping).
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest

from nas.search import storage as st
from tests.nas.search.test_workers import ENV, REPO, RUNNER

URL = os.environ.get("SEGNAS_TEST_POSTGRES_URL", "")
REQUIRED = os.environ.get("SEGNAS_REQUIRE_POSTGRES") == "1"
RAW, ENCODED = "p@ss%w/rd", "p%40ss%25w%2Frd"  # the password .ci/postgres gives its role

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not URL and not REQUIRED,
        reason="no PostgreSQL server: run `.ci/postgres start DIR` and export "
        "SEGNAS_TEST_POSTGRES_URL=<the URL it prints> (CI always does)",
    ),
]


def _leaks(text: str) -> bool:
    return RAW in text or ENCODED in text


def _worker_cmdlines() -> list[str]:
    """The command lines of running `segnas search` worker processes (children of --workers)."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "--worker-index" in cmd and "nas.cli.main" in cmd:
            out.append(cmd)
    return out


def test_two_machines_finish_one_study_on_postgres(tmp_path):
    assert URL and RAW not in URL and ENCODED in URL, (
        "SEGNAS_REQUIRE_POSTGRES=1 but SEGNAS_TEST_POSTGRES_URL is unset or not .ci/postgres's"
    )
    study = f"pg_{uuid.uuid4().hex[:8]}"  # a new study in the shared database
    url_file = tmp_path / "db_url"
    url_file.write_text(URL + "\n")
    common = [
        *RUNNER,
        f"--config.search.study_name={study}",
        "--config.fake.step_time=0.2",
        "--config.wandb.mode=offline",
    ]
    # machine A: the URL from a file, two local workers; machine B: from the environment
    a = subprocess.Popen(
        [
            *common,
            "--workdir",
            str(tmp_path / "a"),
            "--storage-file",
            str(url_file),
            "--workers",
            "2",
        ],
        env=ENV,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    b = subprocess.Popen(
        [*common, "--workdir", str(tmp_path / "b")],
        env={**ENV, st.STORAGE_ENV: URL},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: set[str] = set()
    while a.poll() is None or b.poll() is None:  # A's workers, as `ps` would show them
        seen.update(_worker_cmdlines())
        time.sleep(0.05)
    outs = [a.communicate()[0], b.communicate()[0]]
    assert a.returncode == 0 and b.returncode == 0, "\n".join(o[-2000:] for o in outs)
    assert seen, "no worker process of machine A was seen running"
    assert not any(_leaks(c) for c in seen)
    assert not any(_leaks(o) for o in outs)
    for f in tmp_path.rglob("*"):  # workdirs, logs, search.json, W&B offline files
        if f.is_file() and f != url_file:
            assert not _leaks(f.read_bytes().decode(errors="replace")), f
    assert "segnas:***@127.0.0.1" in (tmp_path / "a" / "search.json").read_text()

    loaded = optuna.load_study(study_name=study, storage=URL)
    trials = loaded.get_trials(deepcopy=False)
    counted = st.counted_trials(trials)
    complete = [t for t in counted if t.user_attrs.get("outcome") == "complete"]
    archs = [t.user_attrs["arch_id"] for t in complete]
    assert len(archs) == 8 and len(set(archs)) == 8  # none lost, none trained twice
    assert all(t.user_attrs.get("outcome") == "complete" for t in counted)
    trained = [
        json.loads(line)["arch_id"]
        for w in ("a", "b")
        for line in (tmp_path / w / "trials.jsonl").read_text().splitlines()
        if json.loads(line)["outcome"] == "complete"
    ]
    assert sorted(set(trained)) == sorted(archs)
