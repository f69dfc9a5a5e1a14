"""A storage password is never shown: masked URLs, scrubbed error lines, and the URL's sources
(flag, file, environment)."""

from __future__ import annotations

import json

import pytest

from nas.errors import UserError
from nas.search import storage as st

# a password with the characters that need URL-encoding: "p@ss%w/rd"
URL = "postgresql://segnas:p%40ss%25w%2Frd@127.0.0.1:5432/sweeps"
RAW, ENCODED = "p@ss%w/rd", "p%40ss%25w%2Frd"


def test_mask_url_hides_the_password_only():
    assert st.mask_url(URL) == "postgresql://segnas:***@127.0.0.1:5432/sweeps"
    assert st.mask_url("mysql+pymysql://u:secret@db/x") == "mysql+pymysql://u:***@db/x"
    for plain in ("sqlite:////tmp/w/study.db", "journal:/tmp/j.log", "postgresql://u@h/db"):
        assert st.mask_url(plain) == plain
    assert st.mask_url("odd://user:pw@host") == "odd://user:***@host"  # not parsed: regex


def test_scrub_masks_the_raw_and_encoded_password_anywhere():
    line = f"FATAL: auth failed for {URL} (password {RAW!r}, sent as {ENCODED})"
    out = st.scrub(line, URL)
    assert RAW not in out and ENCODED not in out
    assert out == (
        "FATAL: auth failed for postgresql://segnas:***@127.0.0.1:5432/sweeps "
        "(password '***', sent as ***)"
    )
    assert st.scrub("nothing to hide", None) == "nothing to hide"


@pytest.mark.parametrize(
    "driver, reason",
    [("postgresql", "cannot open"), ("postgresql+pg8000", "driver is not installed")],
)
def test_storage_errors_name_the_masked_url(driver, reason):
    # port 1: nothing listens; pg8000 is not installed (psycopg 3 is the driver segnas uses)
    with pytest.raises(UserError) as e:
        st.open_storage(
            f"{driver}://segnas:p%40ss@127.0.0.1:1/x",
            heartbeat_interval=30,
            grace_period=90,
            max_retry=1,
            attempts=1,
        )
    msg = str(e.value)
    assert reason in msg and "segnas:***@127.0.0.1:1/x" in msg
    assert "p%40ss" not in msg and "p@ss" not in msg


def test_storage_from_flag_file_or_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(st.STORAGE_ENV, raising=False)
    assert st.storage_from(None, None) is None
    monkeypatch.setenv(st.STORAGE_ENV, URL)
    assert st.storage_from(None, None) == URL
    assert st.storage_from("sqlite:////x.db", None) == "sqlite:////x.db"  # the flag wins
    f = tmp_path / "url.txt"
    f.write_text(URL + "\n# a comment line is ignored\n")
    assert st.storage_from(None, f) == URL
    with pytest.raises(UserError, match="got both; allowed: one of them"):
        st.storage_from(URL, f)
    with pytest.raises(UserError, match=r"--storage-file: cannot read .*missing.*\(No such"):
        st.storage_from(None, tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(UserError, match="is empty; allowed: a file whose first line"):
        st.storage_from(None, tmp_path / "empty")


def test_pareto_asks_for_a_masked_password(tmp_path, capsys, monkeypatch):
    from experiments.quickstart import get_config
    from nas.cli.main import main

    monkeypatch.delenv(st.STORAGE_ENV, raising=False)
    config = json.loads(get_config("smoke").to_json_best_effort())
    (tmp_path / "search.json").write_text(
        json.dumps({"config": config, "storage": st.mask_url(URL)})
    )
    assert main(["pareto", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "whose password segnas never writes; allowed: the URL with its password in " in err
    assert "--storage-file or $SEGNAS_STORAGE" in err
