"""The MLflow store: where it is, opening it safely, its experiment, and URLs shown masked.

Opening is the fragile moment. MLflow migrates a new SQLite store on first connect without a
lock, so N processes starting at once on a fresh store corrupt it: the first open here holds
an inter-process lock beside the database, and ``sqlite`` creates the file whole or not at
all. A store that cannot be reached fails within seconds with one line (bounded HTTP retries,
a connect timeout for databases) instead of MLflow's default of minutes. Every command that
opens an experiment first ends the runs that no live process owns (see ``lifecycle``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import ROOT, resolve_path
from pipeline.tracking import lifecycle, sqlite

if TYPE_CHECKING:
    from mlflow import MlflowClient

# Bounded retries: 3 attempts of at most 10 s each, instead of ~250 s per call.
for _key, _value in {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",  # its links hold a server's password
}.items():
    os.environ.setdefault(_key, _value)

SCHEMES = ("sqlite", "postgresql", "mysql", "http", "https")
DEFAULT_DB = "mlruns/mlflow.db"
_PASSWORD = re.compile(r"(?P<head>://[^/:@\s]*:)[^@\s]*(?=@)")
_QUERY = re.compile(  # ?password=..., &token=... in database and server URLs
    r"(?i)(?P<head>[?&;](?:password|passwd|pwd|token|access_token|secret|api_key)=)[^&;\s'\"]*"
)
SECRET_ENV = (  # credentials MLflow, PostgreSQL and cloud stores read from the environment
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "PGPASSWORD",
    "AWS_SECRET_ACCESS_KEY",
    "DATABRICKS_TOKEN",
)


class StoreError(RuntimeError):
    """The store is unusable (unreachable, not a database, deleted experiment); one line."""


def mask(text: str) -> str:
    """Hide every credential in ``text``: a URL's password (``postgresql://user:***@host/db``),
    ``password=``/``token=`` parameters, and the values of the secret environment variables."""
    text = _QUERY.sub(r"\g<head>***", _PASSWORD.sub(r"\g<head>***", text))
    for name in SECRET_ENV:
        secret = os.environ.get(name, "")
        if len(secret) >= 4:  # a shorter one would mask ordinary words
            text = text.replace(secret, "***")
    return text


class MaskingFilter(logging.Filter):
    """A logging filter (``conf/hydra``): every line on the console and in the job logs is
    masked, Hydra's own (a multirun's banner lists every override) as well as ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        masked = mask(record.getMessage())
        if masked != record.getMessage():
            record.msg, record.args = masked, None
        return True


def tracking_uri(uri: str | None = None) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else SQLite in ``<repo>/mlruns/``.

    A relative SQLite path is taken from the repository root, like every path in the config,
    so Hydra's working directory never matters.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"
    path = sqlite_path(uri)
    return f"sqlite:///{resolve_path(path)}" if path else uri


def sqlite_path(uri: str) -> str | None:
    return uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else None


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside its database; a server chooses its own."""
    path = sqlite_path(uri)
    return (Path(path).parent / "artifacts").resolve().as_uri() if path else None


def local_folder(uri: str | None) -> Path:
    """Where local companions of a store live (Optuna journals, the outbox): beside a SQLite
    store, else in the project's ``mlruns/``."""
    path = sqlite_path(tracking_uri(uri))
    return Path(path).parent if path else ROOT / "mlruns"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (created if missing), released on exit and
    by the kernel if the process dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _reason(err: BaseException) -> str:
    """The useful part of a connection error: 'Connection refused', 'timed out', ..."""
    text = str(err)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.search(
        r"(timed out|Connection refused|could not translate host name[^\n]*)", text
    )
    return (found.group(1) if found else text.splitlines()[0] if text else type(err).__name__)[:200]


def _probe_database(uri: str) -> None:
    """Connect once with a short timeout (MLflow itself retries for about 100 s)."""
    import sqlalchemy

    args = {"connect_timeout": 5} if uri.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as err:
        raise StoreError(
            f"tracking store {mask(uri)} is unreachable ({_reason(err)}): start it, or point "
            "tracking.uri (or MLFLOW_TRACKING_URI) at a running one"
        ) from None


@cache
def client(uri: str | None = None) -> MlflowClient:
    """A client on the store, opened once per process: checked, migrated under a lock."""
    uri = tracking_uri(uri)
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme not in SCHEMES:
        raise StoreError(
            f"tracking.uri={mask(uri)} is invalid: expected sqlite:///<file>, "
            "postgresql://..., mysql://... or http(s)://<MLflow server>"
        )
    if scheme in ("postgresql", "mysql"):
        _probe_database(uri)
    path = sqlite_path(uri)
    # a new database is created (migrated) by one process at a time
    with file_lock(Path(path + ".lock")) if path else nullcontext():
        if path:
            try:
                sqlite.prepare(uri, Path(path), artifact_root(uri))
            except sqlite.StoreFileError as err:
                raise StoreError(str(err)) from None
        return _first_call(uri)


def _first_call(uri: str) -> MlflowClient:
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import, which sets INFO
    # a failed write is reported once, by us (see ``runs``), not as MLflow's traceback
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

    try:
        c = MlflowClient(tracking_uri=uri)  # its constructor opens (and migrates) the store
        c.search_experiments(max_results=1)
        return c
    except Exception as err:
        raise StoreError(
            f"tracking store {mask(uri)} is unreachable or unusable ({_reason(err)}): start "
            "it, or point tracking.uri (or MLFLOW_TRACKING_URI) at a running one"
        ) from None


@cache
def open_experiment(uri: str | None, name: str) -> tuple[MlflowClient, str]:
    """The client and the id of experiment ``name`` (created if needed), once per process;
    runs of it that no live process owns are ended first."""
    c = client(uri)
    uri = tracking_uri(uri)
    path = sqlite_path(uri)
    with file_lock(Path(path + ".lock")) if path else nullcontext():
        experiment = c.get_experiment_by_name(name)
        if experiment is None:
            # the kind makes MLflow 3's UI offer the model-training views, not the GenAI ones
            tags = {"mlflow.experimentKind": "custom_model_development"}
            try:
                experiment_id = c.create_experiment(name, artifact_root(uri), tags)
            except Exception:  # another machine created it first
                experiment_id = c.get_experiment_by_name(name).experiment_id
        elif experiment.lifecycle_stage == "deleted":
            raise StoreError(
                f"tracking.experiment={name!r} is deleted in {mask(uri)}: restore it with "
                f"`mlflow experiments restore --experiment-id {experiment.experiment_id}` or "
                "choose another tracking.experiment"
            )
        else:
            experiment_id = experiment.experiment_id
    lifecycle.end_stale_runs(c, experiment_id)
    return c, experiment_id
