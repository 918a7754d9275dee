"""MLflow tracking: the only module that imports mlflow, and only when a run is recorded.

``Tracker`` is an epoch hook and a context manager around one MLflow run: it logs the flat
config as parameters, provenance tags, per-epoch metrics (batched, so tracking costs nothing
measurable), final test metrics and artifacts, and always ends the run: FINISHED, FAILED (with
the error as a tag) or KILLED (Ctrl-C, SIGTERM). ``MultirunParent`` is a Hydra callback that
gives every ``-m`` multirun one parent run whose children are its jobs.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback

from pipeline.config import ROOT, TrainConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from pipeline.data import Dataset
    from pipeline.fit import Result

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in our logs
PARENT_RUN_ENV = "PIPELINE_PARENT_RUN_ID"  # children of a multirun, a sweep or a report
CORE_MODULES = ("config", "data", "layers", "network", "optim", "fit")
FLUSH_SECONDS = 5.0  # metrics reach the store in batches at most this often


def tracking_uri(uri: str | None = None) -> str:
    """Config value, else ``$MLFLOW_TRACKING_URI``, else SQLite in ``<repo>/mlruns/``."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlruns/mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside its database; a server chooses its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()


def open_experiment(uri: str | None, name: str) -> tuple[MlflowClient, str]:
    """A client on the store and the id of experiment ``name``, created if needed."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return client, experiment.experiment_id
    try:
        # the kind makes MLflow 3's UI show the model-training views, not the GenAI ones
        tags = {"mlflow.experimentKind": "custom_model_development"}
        return client, client.create_experiment(name, _artifact_root(uri), tags)
    except MlflowException:  # another process created it first
        return client, client.get_experiment_by_name(name).experiment_id


@functools.cache
def code_version() -> str:
    """Hash of the NumPy core's sources: what decides whether an old run can be reused."""
    digest = hashlib.sha256()
    for module in CORE_MODULES:
        digest.update((ROOT / "pipeline" / f"{module}.py").read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def provenance() -> dict[str, str]:
    """Git commit and dirtiness, and the versions of what the numbers depend on."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    tags = {
        "git.commit": git("rev-parse", "HEAD") or "unknown",
        "git.dirty": str(bool(git("status", "--porcelain", "--untracked-files=no"))).lower(),
        "code_version": code_version(),
        "python": platform.python_version(),
    }
    for package in ("numpy", "mlflow", "hydra-core", "optuna"):
        tags[f"version.{package}"] = metadata.version(package)
    return tags


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a run is open, so it ends KILLED, not RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def end_status(exc: BaseException | None) -> str:
    if exc is None:
        return "FINISHED"
    return "KILLED" if isinstance(exc, KeyboardInterrupt | SystemExit) else "FAILED"


class Tracker:
    """One MLflow run around one training; call it as the ``on_epoch_end`` hook."""

    def __init__(
        self, cfg: TrainConfig, data_digest: str, tags: dict[str, str], parent_run_id: str | None
    ) -> None:
        self.cfg = cfg
        self.tags = {
            "preset": cfg.preset,
            "config_hash": cfg.training_hash(),
            "data.digest": data_digest,
            "data.name": cfg.data.name,
            **provenance(),
            **tags,
        }
        parent_run_id = parent_run_id or os.environ.get(PARENT_RUN_ENV)
        if parent_run_id:
            self.tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = ""
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()
        self._signals = sigterm_as_interrupt()

    def __enter__(self) -> Tracker:
        from mlflow.entities import Param

        self.client, experiment_id = open_experiment(
            self.cfg.tracking.uri, self.cfg.tracking.experiment
        )
        name = self.cfg.tracking.run_name or f"{self.cfg.preset}-seed{self.cfg.trainer.seed}"
        run = self.client.create_run(experiment_id, run_name=name, tags=self.tags)
        self.run_id = run.info.run_id
        try:
            params = [Param(k, str(v)) for k, v in self.cfg.flat().items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])
        except BaseException as exc:  # never leave the new run RUNNING
            self.client.set_terminated(self.run_id, end_status(exc))
            raise
        self._signals.__enter__()
        return self

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, epoch) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        for i in range(0, len(self._pending), 1000):  # and at most 1000 metrics
            self.client.log_batch(self.run_id, metrics=self._pending[i : i + 1000])
        self._pending = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        self.flush()

    def log_result(self, result: Result, data: Dataset) -> None:
        """Final metrics and the artifacts: config, curves, confusion matrix, weights."""
        from pipeline import artifacts

        best = result.history[result.best_epoch - 1]
        self.log_metrics(
            {
                "test_loss": result.test_loss,
                "test_accuracy": result.test_accuracy,
                "best_epoch": result.best_epoch,
                "stopped_epoch": result.stopped_epoch,
                "best_val_loss": best["val_loss"],
                "best_val_accuracy": best["val_accuracy"],
                "train_seconds": result.seconds,
            }
        )
        self.client.set_tag(self.run_id, "stop_reason", result.stop_reason)
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.write_run(Path(tmp), self.cfg, result, data)
            self.client.log_artifacts(self.run_id, tmp)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        self._signals.__exit__(None, None, None)
        status = end_status(exc)
        try:
            if status == "FAILED":
                self.client.set_tag(self.run_id, "error", f"{type(exc).__name__}: {exc}"[:5000])
            self.flush()  # the epochs before a failure or a kill are worth keeping
        finally:
            self.client.set_terminated(self.run_id, status)


def log_tables(
    cfg: TrainConfig, name: str, tables: dict[str, list[dict]], metrics: dict[str, float]
) -> str:
    """A run holding result tables (CSV artifacts) and summary metrics, e.g. the gradient check."""
    import csv

    from mlflow.entities import Metric

    client, experiment_id = open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    tags = {"kind": name, **provenance()}
    parent_run_id = os.environ.get(PARENT_RUN_ENV)
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        with tempfile.TemporaryDirectory() as tmp:
            for table, rows in tables.items():
                with open(Path(tmp) / f"{table}.csv", "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
            client.log_artifacts(run_id, tmp)
    except BaseException as exc:
        client.set_terminated(run_id, end_status(exc))
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def find_finished(uri: str | None, experiment: str, tags: dict[str, str]) -> str | None:
    """The newest FINISHED run carrying all these tags (config hash, data digest, code), if any."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri(uri))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    terms = [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
    runs = client.search_runs(
        [found.experiment_id],
        " and ".join([*terms, "attributes.status = 'FINISHED'"]),
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def set_tags(run_id: str, tags: dict[str, str], uri: str | None = None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri(uri))
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def run_artifact(run_id: str, path: str, uri: str | None = None) -> Path:
    """Download one artifact of a run (``model.npz``, ``config.yaml``) to a local path."""
    from mlflow.artifacts import download_artifacts

    return Path(
        download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=tracking_uri(uri))
    )


class ParentRun:
    """A parent run for a group of runs (a multirun, a sweep, a report).

    It exports its id in ``$PIPELINE_PARENT_RUN_ID`` so children in this process and its
    subprocesses attach to it, and it is ended even if the process exits early.
    """

    def __init__(
        self,
        uri: str | None,
        experiment: str,
        name: str,
        tags: dict[str, str],
        resume_run_id: str | None = None,
    ) -> None:
        self.client, experiment_id = open_experiment(uri, experiment)
        if resume_run_id:  # a resumed sweep keeps its one parent run
            self.run_id = resume_run_id
            self.client.update_run(resume_run_id, status="RUNNING")
        else:
            tags = {**provenance(), **tags}
            run = self.client.create_run(experiment_id, run_name=name, tags=tags)
            self.run_id = run.info.run_id
        os.environ[PARENT_RUN_ENV] = self.run_id
        self._ended = False
        atexit.register(self.end, "KILLED")

    def end(self, status: str = "FINISHED") -> None:
        if not self._ended:
            self._ended = True
            self.client.set_terminated(self.run_id, status)
            if os.environ.get(PARENT_RUN_ENV) == self.run_id:
                del os.environ[PARENT_RUN_ENV]


class MultirunParent(Callback):
    """Hydra callback (``conf/config.yaml``): one MLflow parent run per ``-m`` multirun."""

    parent: ParentRun | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if not config.get("tracking", {}).get("enabled", False):
            return
        overrides = " ".join(config.hydra.overrides.task)
        self.parent = ParentRun(
            config.tracking.uri,
            config.tracking.experiment,
            f"multirun {time.strftime('%Y-%m-%d %H:%M:%S')}",
            {"kind": "multirun", "hydra.overrides": overrides},
        )

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent is not None:
            self.parent.end("FINISHED")
