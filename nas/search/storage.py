"""The sweep's memory: the Optuna storage, and which trials count.

Storage choice. By default a SQLite file, `WORKDIR/study.db`, through Optuna's RDBStorage. RDB
storages (SQLite, PostgreSQL, MySQL) are the ones with Optuna's heartbeat, the only way in
Optuna 5 for a worker to notice that a worker on *another machine* died holding a RUNNING trial:
each worker records a heartbeat every `heartbeat_interval` s, `fail_stale_trials` fails trials
silent for `grace_period` s, and `RetryHeartbeatStaleTrialCallback` enqueues them again (same
architecture, so the retry resumes from the dead worker's checkpoint). Optuna's JournalStorage
has no heartbeat; it is offered as `journal:PATH` for a shared file system without a database
server, where a dead worker's trial is caught by the pid check below only.
Each worker also records (host, pid) on its trial, so a sweep restarted on the same host fails
and retries the trial of a killed predecessor at once instead of after the grace period.

Credentials. A database URL may carry a password (`postgresql://user:PASSWORD@host/db`). segnas
never prints, logs or writes it: everything shown or stored uses `mask_url` (`user:***@`), error
lines are `scrub`bed, and worker processes get the URL through the environment, not their
command line. The URL itself can come from `--storage URL`, `--storage-file PATH` (its first
line; keep the file readable by you only) or `$SEGNAS_STORAGE`, so it need not be typed where
shell history and `ps` see it.

SQLite with several local processes: one writer at a time, the others wait (60 s connect
timeout); a sweep writes a few rows per candidate, so contention is negligible. A SQLite file on
NFS is unsafe (its locks are unreliable there): across machines use a database server URL.

Which trials count (toward `num_trials`, in outputs): all except trials the driver marked
`skipped` (it asked for a trial it did not need: the budget was already reached by other
workers, or another worker holds the same architecture), `duplicate` trials (an arch an earlier
trial holds) and killed trials (their worker died: a later trial retries the architecture, or,
retries exhausted, the architecture is free to be proposed again). The table of outcomes is
in the `nas.search` docstring.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from nas.errors import UserError

DEFAULT_DB = "study.db"


JOURNAL_PREFIX = "journal:"
STORAGE_ENV = "SEGNAS_STORAGE"  # the storage URL, for workers and for users who prefer it
_MASK = "***"


def mask_url(url: str) -> str:
    """`url` with its password, if any, replaced by `***` (what segnas shows or writes)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception:  # not a database URL (journal:PATH, a typo): mask anything that looks
        return re.sub(r"(//[^/:@]*:)[^@/]*@", rf"\g<1>{_MASK}@", url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def scrub(text: str, url: str | None) -> str:
    """`text` (an error line, a log) with `url`'s password, raw or URL-encoded, masked."""
    if not url:
        return text
    text = text.replace(url, mask_url(url))
    try:
        password = sqlalchemy.engine.make_url(url).password
    except Exception:
        match = re.search(r"//[^/:@]*:([^@/]*)@", url)
        password = match.group(1) if match else None
    if password:
        for form in {
            str(password),
            urllib.parse.quote(str(password), safe=""),
            urllib.parse.quote_plus(str(password)),
        }:
            if form:
                text = text.replace(form, _MASK)
    return text


def storage_from(url: str | None, file: str | Path | None) -> str | None:
    """The storage URL: `--storage`, else the first line of `--storage-file`, else
    `$SEGNAS_STORAGE`, else None (the workdir's SQLite file)."""
    if url and file:
        raise UserError(
            "--storage / --storage-file: got both; allowed: one of them (or $SEGNAS_STORAGE)"
        )
    if file:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as e:
            raise UserError(
                f"--storage-file: cannot read {str(file)!r} ({e.strerror}); allowed: a "
                "readable file whose first line is the storage URL"
            ) from None
        if not lines or not lines[0].strip():
            raise UserError(
                f"--storage-file: {str(file)!r} is empty; allowed: a file whose first line "
                "is the storage URL"
            )
        return lines[0].strip()
    return url or os.environ.get(STORAGE_ENV) or None


def resolve_url(storage: str | None, workdir: Path) -> str:
    """`--storage URL` as given, or the sweep's own SQLite file in the workdir."""
    return storage or f"sqlite:///{(workdir / DEFAULT_DB).resolve()}"


def is_default_storage(url: str, workdir: Path) -> bool:
    """Whether `url` is the workdir's own SQLite file (no `--storage` given)."""
    return url == resolve_url(None, workdir)


def open_storage(
    url: str, *, heartbeat_interval: int, grace_period: int, max_retry: int, attempts: int = 3
) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url`; UserError naming the URL when it cannot be opened.

    Workers started together on a fresh database race to create its tables (one of them gets
    a unique-constraint error); a second attempt finds the tables made.
    """
    for attempt in range(attempts):
        try:
            return _open_storage(url, heartbeat_interval, grace_period, max_retry)
        except UserError as e:
            # SQLite says "UNIQUE constraint failed", PostgreSQL "duplicate key value
            # violates unique constraint" (two machines creating Optuna's tables at once)
            text = str(e).lower()
            race = any(w in text for w in ("unique constraint", "already exists", "locked"))
            if attempt == attempts - 1 or not race:
                raise
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _open_storage(
    url: str, heartbeat_interval: int, grace_period: int, max_retry: int
) -> optuna.storages.BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    try:
        if url.startswith(JOURNAL_PREFIX):
            path = url[len(JOURNAL_PREFIX) :]
            path = path[2:] if path.startswith("//") else path  # journal:///abs and journal:rel
            from optuna.storages.journal import (
                JournalFileBackend,
                JournalFileOpenLock,
                JournalStorage,
            )

            return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
        if "://" not in url:
            raise UserError(
                f"storage: got {mask_url(url)!r}; allowed: a database URL (sqlite:///PATH, "
                "postgresql://..., mysql://...) or journal:PATH"
            )
        sqlite = url.startswith("sqlite")
        if sqlite:
            _sqlite_wal(url)
            _sqlite_fast_commits()
        engine_kwargs = {"connect_args": {"timeout": 60}} if sqlite else {}
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=retry,
        )
    except UserError:
        raise
    except ImportError as e:
        raise UserError(
            f"storage: cannot open {mask_url(url)!r}: its database driver is not installed "
            f"({scrub(str(e), url)}); allowed: sqlite:///PATH, journal:PATH, or install the driver "
            "(pip install -e '.[postgres]' for postgresql, pymysql for mysql+pymysql)"
        ) from None
    except Exception as e:  # sqlalchemy.exc.*, OSError: an unreachable or unusable storage
        msg = scrub(str(e).splitlines()[0], url) if str(e) else type(e).__name__
        raise UserError(
            f"storage: cannot open {mask_url(url)!r} ({msg}); allowed: a reachable, writable "
            "database URL or journal:PATH"
        ) from None


_SQLITE_HOOKED = False


def _sqlite_fast_commits() -> None:
    """synchronous=NORMAL on this process's SQLite connections: with WAL (below) a commit then
    needs no fsync; a killed process loses nothing, only a power cut may lose the last commits.
    (A trial writes ~15 small rows; ~20 ms of fsync each without this.)"""
    global _SQLITE_HOOKED
    if _SQLITE_HOOKED:
        return
    _SQLITE_HOOKED = True

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_wal(url: str) -> None:
    """Switches a SQLite file to WAL mode once (the mode is stored in the file): readers do
    not block the writer, and commits are cheap (~20 ms of fsync each without it)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path == ":memory:":
        return
    with sqlite3.connect(path, timeout=60) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def retry_callback(study: optuna.Study) -> Any:
    """The storage's stale-trial callback, or a fresh one for storages without heartbeat."""
    storage = study._storage  # Optuna keeps it private; reaping needs it like fail_stale_trials
    cb = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    return cb or RetryHeartbeatStaleTrialCallback(max_retry=2)


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of trials some later trial retries."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def counted_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that stand for an architecture of this sweep (see the module docstring)."""
    retried = retried_numbers(trials)
    return [
        t
        for t in trials
        if not t.user_attrs.get("skipped")
        and t.user_attrs.get("outcome") != "duplicate"
        # killed: retried (the retry carries the arch) or out of retries (the arch is free
        # to be proposed again); a kill is never the candidate's failure
        and not (
            t.state == TrialState.FAIL and (t.number in retried or "outcome" not in t.user_attrs)
        )
    ]


def slots_taken(trials: list[FrozenTrial], before: int | None = None) -> int:
    """Distinct architectures among counted trials (numbered below `before`), where a trial just
    asked and not yet given its architecture takes one slot of its own."""
    ids: set[str] = set()
    pending = 0
    for t in counted_trials(trials):
        if before is not None and t.number >= before:
            continue
        if "arch_id" in t.user_attrs:
            ids.add(t.user_attrs["arch_id"])
        else:
            pending += 1
    return len(ids) + pending


def prior_trial(trials: list[FrozenTrial], arch_id: str, number: int) -> FrozenTrial | None:
    """The earliest counted trial before `number` holding the same architecture, if any."""
    for t in sorted(counted_trials(trials), key=lambda t: t.number):
        if t.number < number and t.user_attrs.get("arch_id") == arch_id:
            return t
    return None
