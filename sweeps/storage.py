"""Where studies live, the lock that makes trial budgets exact, and trials that lost their owner.

A storage is ``journal:<file>`` (the default: one journal file beside the MLflow store, for
workers on this machine), ``sqlite:///<file>``, or ``postgresql+psycopg://...`` for workers on
many machines. Every study has a lock in its storage (a file lock beside a file, a PostgreSQL
advisory lock on a server): a launcher counts the trials and asks for a new one while holding
it, so ``n_trials`` is the total however many launchers run. A RUNNING trial whose owner is
gone (``pipeline.tracking.lifecycle``) is failed, without a reason, so it runs again.
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.tracking import lifecycle, store
from sweeps import journal
from sweeps.space import SweepError

HEARTBEAT_ATTR = "heartbeat"  # every storage; an RDB storage also keeps Optuna's own heartbeat
OWNER_ATTR = "owner"


def default(tracking_uri: str | None) -> str:
    """One journal for every study, beside the MLflow store: optuna-dashboard shows them all."""
    return f"journal:{store.local_folder(tracking_uri) / 'optuna' / 'studies.journal'}"


def check(url: str) -> str:
    """Refuse a storage URL this project cannot lock (one line naming the key)."""
    if url.startswith("journal:") and url.removeprefix("journal:"):
        return url
    if url.startswith("sqlite:///") or url.split("://", 1)[0] in (
        "postgresql",
        "postgresql+psycopg",
    ):
        return url
    raise SweepError(
        f"study.storage={store.mask(url)} is invalid: expected journal:<file>, sqlite:///<file> "
        "or postgresql+psycopg://user@host/db"
    )


def _file(url: str) -> Path | None:
    """The local file behind a journal or SQLite storage."""
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:")).expanduser().resolve()
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).expanduser().resolve()
    return None


@functools.lru_cache(maxsize=8)
def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The storage, reached within seconds or refused in one line; opened once per process (a
    journal is replayed from its first line on opening: a report's studies share one)."""
    path = _file(url)
    try:
        if url.startswith("journal:"):
            return journal.open_journal(path)
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs={"connect_args": {"connect_timeout": 10}} if not path else {},
                heartbeat_interval=max(1, int(lifecycle.heartbeat_seconds())),
                grace_period=int(lifecycle.stale_after()),
            )
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SweepError(
            f"study.storage={store.mask(url)} cannot be opened ({store.mask(reason)[:200]})"
        ) from None


@contextmanager
def lock(url: str, storage: optuna.storages.BaseStorage, study_name: str) -> Iterator[None]:
    """Exclusive access to one study's budget, across processes and machines."""
    path = _file(url)
    if path:
        with store.file_lock(path.with_name(path.name + ".budget-lock")):  # not Optuna's .lock
            yield
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
    engine = getattr(storage, "_backend", storage).engine  # RDB storages come wrapped in a cache
    with engine.connect() as conn:  # the lock lives as long as this session
        conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


def own(study: optuna.Study, trial: optuna.Trial) -> None:
    """Mark a new trial as this process's, with its first heartbeat, and keep it beating."""
    storage, trial_id = study._storage, trial._trial_id
    trial.set_user_attr(OWNER_ATTR, lifecycle.me())

    def beat() -> None:  # the attribute tells other hosts when the trial counts as gone
        storage.set_trial_user_attr(trial_id, HEARTBEAT_ATTR, time.time())
        if not isinstance(storage, optuna.storages.JournalStorage):
            storage.record_heartbeat(trial_id)  # RDB: Optuna's own, which fail_stale_trials reads

    beat()
    lifecycle.HEARTBEAT.add(f"trial {trial_id}", beat)


def disown(trial: optuna.Trial) -> None:
    lifecycle.HEARTBEAT.remove(f"trial {trial._trial_id}")


def fail_stale(study: optuna.Study) -> int:
    """Fail the RUNNING trials no live process owns (Optuna's heartbeat rule for RDB
    storages, the owner's pid on this machine, a stopped heartbeat in a journal)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER_ATTR)
        beat = trial.user_attrs.get(HEARTBEAT_ATTR)
        if owner and lifecycle.is_stale([owner], beat):
            study._storage.set_trial_user_attr(
                trial._trial_id, "interrupted", lifecycle.ended_note([owner])
            )
            try:
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                failed += 1
            except optuna.exceptions.UpdateFinishedTrialError:  # another launcher was first
                pass
    return failed


def counted(trial: FrozenTrial) -> bool:
    """A trial that ran to an outcome: complete, pruned, or failed for a recorded reason.

    An interrupted trial (Ctrl-C, a killed worker) is not counted, so resuming runs it again.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "failed_reason" in trial.user_attrs
