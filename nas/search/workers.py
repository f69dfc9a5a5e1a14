"""Worker liveness on one sweep: who runs where, heartbeats, dead workers, and file locks.

Each worker records (host, pid) on its trial, so a sweep restarted on the same host fails and
retries the trial of a killed predecessor at once instead of after the storage's grace period;
local workers serialise study creation and asking under one `flock` in the workdir.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.search.storage import retry_callback


def worker_id() -> dict[str, Any]:
    """This process as {"host": host name, "pid": pid}, as recorded on its trials."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (another user's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Heartbeat:
    """Records a trial's heartbeat every `interval` s in a thread while a candidate trains.

    `study.optimize` does this by itself; an ask/tell driver has to (Optuna's own thread class
    is private), and only RDB storages have heartbeats.
    """

    def __init__(self, study: optuna.Study, trial_id: int) -> None:
        self._storage = study._storage
        self._trial_id = trial_id
        interval = getattr(self._storage, "get_heartbeat_interval", lambda: None)()
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # a transient database error must not kill the candidate
                pass
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> Heartbeat:
        if self._interval:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# A worker records itself on a trial right after asking for it; a RUNNING trial still without
# a worker this long after it started lost its worker in between (killed at that instant).
ORPHAN_SECONDS = 30.0


def is_orphan(t: FrozenTrial) -> bool:
    """A RUNNING trial that no worker ever recorded itself on, ORPHAN_SECONDS after it began."""
    if t.user_attrs.get("worker") or t.datetime_start is None:
        return False
    return (datetime.datetime.now() - t.datetime_start).total_seconds() >= ORPHAN_SECONDS


def _fail_orphan(study: optuna.Study, t: FrozenTrial) -> list[int]:
    """FAILs an orphan trial (it holds no arch yet); a queued arch it had popped is queued
    again, so a listed candidate or a retry is not lost."""
    try:
        if not study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
            return []
    except optuna.exceptions.UpdateFinishedTrialError:
        return []  # another worker failed it first
    fixed = t.system_attrs.get("fixed_params")
    if fixed:
        study.enqueue_trial(fixed, skip_if_exists=False)
    return [t.number]


def reap_dead_workers(study: optuna.Study) -> list[int]:
    """Fails (and enqueues a retry of) RUNNING trials whose worker is gone; returns their numbers.

    Three checks: Optuna's heartbeat grace period (any host, RDB storages); for trials started
    on this host, whether the recorded pid still runs (immediate); and trials no worker ever
    recorded itself on (`is_orphan`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        optuna.storages.fail_stale_trials(study)
    me = worker_id()
    reaped = []
    retry = retry_callback(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if not worker and is_orphan(t):
            reaped += _fail_orphan(study, t)
            continue
        if worker.get("host") != me["host"] or not worker.get("pid"):
            continue
        if worker["pid"] == me["pid"] or pid_alive(worker["pid"]):
            continue
        try:
            if not study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker on this host reaped it first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry(study, study._storage.get_trial(t._trial_id))
        reaped.append(t.number)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return sorted(set(reaped) | (before - after - set(reaped)))


class FileLock:
    """An exclusive, non-blocking `flock` on a file; the kernel drops it when the process dies,
    so a killed worker never leaves a stale lock.

    Why the driver needs it: Python's sqlite3 driver sends BEGIN only before a transaction's
    first write, so Optuna's pop of a queued trial (read "WAITING", write "RUNNING") is not
    atomic on SQLite, and two local workers can both receive the same trial (seen in tests;
    database servers lock the row and do not have this race). A worker therefore holds
    `locks/trial-<number>` while it runs a trial; a worker that cannot take it leaves the
    trial to its holder. (Two trials of one architecture are kept apart through the study's
    database, not a lock file: see `driver.run_trial`.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait: bool = False) -> bool:
        """Takes the lock; with `wait`, blocks until it is free (always True then)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Release the lock and close its file; a no-op when not held."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def workdir_lock(workdir: Path) -> FileLock:
    """The lock local workers of one workdir hold while they open the study (create it,
    enqueue listed candidates) and while they check the budget and ask for a trial.

    Without it two workers started together both enqueue the listed candidates, and a worker
    that saw one queued candidate left can ask after another worker took it, creating a trial
    the sweep does not need; both end as extra `skipped` rows. Workers on other machines (a
    database server URL) do not share this lock: there those races remain possible and are
    handled by the `skipped` bookkeeping below.
    """
    return FileLock(Path(workdir) / "locks" / "study")
