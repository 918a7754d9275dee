"""MLflow runs: one per training (``Tracker``), parents for groups (``ParentRun``), lookups.

``Tracker`` is an epoch hook and a context manager around one run: parameters, provenance
tags, per-epoch metrics (batched, so tracking costs nothing measurable), final metrics and
artifacts. It always ends its run: FINISHED, FAILED (the error as a tag) or KILLED (an
interrupt, or a pruner). If the store goes away mid-run, training goes on and the rest of the
record is kept in an ``Outbox`` to upload later.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import TrainConfig, resolve_path
from pipeline.tracking import lifecycle, store
from pipeline.tracking.outbox import Outbox
from pipeline.tracking.provenance import provenance

if TYPE_CHECKING:
    from pipeline.data import Dataset
    from pipeline.fit import Result

log = logging.getLogger(__name__)

PARENT_RUN_ENV = "PIPELINE_PARENT_RUN_ID"  # children of a multirun, a sweep or a report
FLUSH_SECONDS = 5.0  # metrics reach the store in batches at most this often


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an interrupt, or an error raised while one was being handled: a
    signal that lands in a library's cleanup comes out as that cleanup's error (Optuna's
    journal lock, interrupted between the two steps of its release, unlinks a file it already
    removed: FileNotFoundError), yet what ended the work was the interrupt."""
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__context__
    return False


def end_status(exc: BaseException | None) -> str:
    """How a run (or a parent) ends that ``exc`` (None: nothing) stopped."""
    if exc is None:
        return "FINISHED"
    return "KILLED" if isinstance(exc, SystemExit) or is_interrupt(exc) else "FAILED"


def _now_ms() -> int:
    return int(time.time() * 1000)


def owner_tags() -> dict[str, str]:
    """This process as the owner of a new run, and its first heartbeat."""
    return {lifecycle.OWNERS_TAG: lifecycle.me(), lifecycle.HEARTBEAT_TAG: f"{time.time():.0f}"}


def beat(client: Any, run_id: str) -> Callable[[], None]:
    return lambda: client.set_tag(run_id, lifecycle.HEARTBEAT_TAG, f"{time.time():.0f}")


def is_outage(err: BaseException) -> bool:
    """Whether ``err`` says the store cannot be reached (as opposed to refusing a value)."""
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    if isinstance(err, requests.ConnectionError | requests.Timeout | OSError):
        return True
    if isinstance(err, sqlalchemy.exc.OperationalError | sqlalchemy.exc.DisconnectionError):
        return True
    text = str(err)
    return (
        isinstance(err, MlflowException)
        and "API request to" in text
        and ("Max retries exceeded" in text or "Connection" in text or "timed out" in text)
    )


class Tracker:
    """One MLflow run around one training; call it as the ``on_epoch_end`` hook."""

    def __init__(
        self,
        cfg: TrainConfig,
        name: str,
        params: dict[str, str],
        tags: dict[str, str],
        parent_run_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.params = params
        self.tags = {"kind": "run", **provenance(), **tags}  # callers name other kinds
        parent_run_id = parent_run_id or os.environ.get(PARENT_RUN_ENV)
        if parent_run_id:
            self.tags["mlflow.parentRunId"] = parent_run_id
        self.run_id = ""
        self.outbox: Outbox | None = None
        self._ending: tuple[str, str] | None = None  # (status, new name) when not plain FINISHED
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()
        self._system: Any = None

    def __enter__(self) -> Tracker:
        from mlflow.entities import Param

        self.client, experiment_id = store.open_experiment(
            self.cfg.tracking.uri, self.cfg.tracking.experiment
        )
        tags = {**self.tags, **owner_tags()}
        try:
            run = self.client.create_run(experiment_id, run_name=self.name, tags=tags)
        except Exception as err:
            if not is_outage(err):
                raise
            raise store.StoreError(f"cannot create a run: {str(err).splitlines()[0]}") from None
        self.run_id = run.info.run_id
        lifecycle.HEARTBEAT.add(self.run_id, beat(self.client, self.run_id))
        self._system = system_metrics(self.run_id, self.client.tracking_uri)
        try:
            params = [Param(k, v) for k, v in self.params.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])
        except BaseException as exc:  # never leave the new run RUNNING
            self.__exit__(type(exc), exc, None)
            raise
        return self

    def log_dataset(self, data: Dataset) -> None:
        """The data set in the run's Dataset field: name, digest, source and split sizes."""
        from mlflow.entities import Dataset as MlflowDataset
        from mlflow.entities import DatasetInput, InputTag

        source = json.dumps({"uri": resolve_path(self.cfg.data.dir).as_uri()})
        sizes = {"train": len(data.train), "validation": len(data.val), "test": len(data.test)}
        profile = json.dumps(sizes)
        dataset = MlflowDataset(data.name, data.digest[:16], "local", source, None, profile)
        inputs = [DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])]

        def send() -> None:
            try:
                self.client.log_inputs(self.run_id, inputs)
            except Exception as err:  # two runs created the same data set at once: it exists now
                if is_outage(err):
                    raise
                self.client.log_inputs(self.run_id, inputs)

        self._send(send, lambda box: None)

    def _send(self, call: Callable[[], Any], keep: Callable[[Outbox], None]) -> None:
        """Send to the store; once that has failed, keep everything in the outbox instead.

        Any failure to write counts, not only an unreachable server: a full disk, a store
        file deleted or truncated under the run (MLflow wraps those as its own errors) lose
        the record just the same, and training is worth finishing either way."""
        if self.outbox is None:
            try:
                call()
                return
            except Exception as err:
                self.outbox = Outbox(self.run_id, self.cfg.tracking.uri, self.cfg.tracking.outbox)
                reason = store.mask(str(err).splitlines()[0] if str(err) else type(err).__name__)
                log.warning(
                    f"cannot write to the tracking store ({reason[:200]}): training goes on, "
                    f"the run's record is kept in {self.outbox.folder}"
                )
        keep(self.outbox)

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        self._pending += [Metric(k, float(v), now, epoch) for k, v in metrics.items()]
        if time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        batch, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        if not batch:
            return

        def send() -> None:
            for i in range(0, len(batch), 1000):  # and at most 1000 metrics
                self.client.log_batch(self.run_id, metrics=batch[i : i + 1000])

        self._send(send, lambda box: box.metrics(batch))

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        self._pending += [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.flush()

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        batch = [RunTag(k, v) for k, v in tags.items()]
        self._send(lambda: self.client.log_batch(self.run_id, tags=batch), lambda b: b.tags(tags))

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        self._send(
            lambda: self.client.log_artifacts(self.run_id, str(folder), artifact_path),
            lambda box: box.artifacts(folder, artifact_path),
        )

    def log_result(self, result: Result, data: Dataset) -> None:
        """Final metrics and tags, and the artifacts (config, curves, confusion matrix,
        weights). A pruned run is a partial curve, not a result: it ends KILLED, with no test
        metrics and no artifacts; a run that never learned says so in its name."""
        from pipeline import artifacts

        best = result.history[result.best_epoch - 1]
        metrics = {
            "best_epoch": result.best_epoch,
            "stopped_epoch": result.stopped_epoch,
            "best_val_loss": best["val_loss"],
            "best_val_accuracy": best["val_accuracy"],
            "train_seconds": result.seconds,
        }
        if not result.pruned:
            metrics |= {"test_loss": result.test_loss, "test_accuracy": result.test_accuracy}
            # the UI writes a bar's value with two decimals: 0.98 for 0.9812 and 0.9785 alike
            metrics["test_accuracy_pct"] = 100 * result.test_accuracy
        self.log_metrics(metrics)  # step 0: one value, which the UI compares across runs as bars
        outcome = "pruned" if result.pruned else "complete" if result.learned else "never learned"
        self.set_tags(
            {
                "stop_reason": result.stop_reason,
                "learned": str(result.learned).lower(),
                "outcome": outcome,
            }
        )
        if result.pruned:
            self._ending = ("KILLED", f"{self.name} (pruned at epoch {result.stopped_epoch})")
            return
        if not result.learned:
            self._ending = ("FINISHED", f"{self.name} (never learned)")
        with tempfile.TemporaryDirectory() as tmp:
            artifacts.write_run(Path(tmp), self.cfg, result, data)
            self.log_artifacts(Path(tmp))
            if self.cfg.tracking.model and self.cfg.tracking.log_weights:
                self.log_model(Path(tmp), data)

    def log_model(self, folder: Path, data: Dataset) -> None:
        """The network as the run's MLflow model (in an outage, what the upload needs to log
        it: model.npz is among the kept artifacts)."""
        from pipeline import serving

        preprocessing = {"normalize": self.cfg.data.normalize, "stats": data.stats}

        def send() -> None:
            uri = serving.log(
                self.client, self.run_id, self.name, folder, data.examples, preprocessing
            )
            self.client.set_tag(self.run_id, "model_uri", uri)

        self._send(send, lambda box: box.model(self.name, data.examples, preprocessing))

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> None:
        status, name = self._ending if exc is None and self._ending else (end_status(exc), None)
        try:
            if status == "FAILED":
                self.set_tags({"error": f"{type(exc).__name__}: {exc}"[:5000]})
            self.flush()  # the epochs before a failure or a kill are worth keeping
        finally:
            lifecycle.HEARTBEAT.remove(self.run_id)
            if self._system is not None:
                self._system.finish()
                self._send(lambda: last_sample(self._system), lambda box: None)
            if name:
                self._send(lambda: self.client.update_run(self.run_id, name=name), lambda b: None)
            end = _now_ms()
            self._send(
                lambda: self.client.set_terminated(self.run_id, status, end),
                lambda box: box.end(status, end),
            )


def system_metrics(run_id: str, uri: str) -> Any:
    """MLflow's system metrics (CPU, memory, disk, network: ``system/*``, one sample every
    10 s and one at the end) for a training run, unless ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING``
    is false. A sample costs about 30 ms of a 10 s interval (0.3%, README); a store that goes
    away stops the monitor without a word (the run's own record reports the outage)."""
    import logging

    from mlflow.environment_variables import MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    if (
        MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.is_set()
        and not MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING.get()
    ):
        return None
    logging.getLogger("mlflow.system_metrics").setLevel(logging.CRITICAL)
    monitor = SystemMetricsMonitor(run_id, tracking_uri=uri)
    monitor.start()
    return monitor


def last_sample(monitor: Any) -> None:
    """A stopped monitor's last sample, logged: MLflow's own loop logs one only after each
    full interval, so a run shorter than 10 s would have none."""
    monitor.collect_metrics()
    monitor.publish_metrics(monitor.aggregate_metrics())
    monitor.mlflow_logger.flush()


def log_tables(
    cfg: TrainConfig,
    name: str,
    tables: dict[str, list[dict]],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """A run holding result tables (CSV artifacts) and summary metrics, e.g. the gradient check."""
    import csv

    from mlflow.entities import Metric

    client, experiment_id = store.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    tags = {"kind": name, **provenance(), **owner_tags(), **tags}
    parent_run_id = os.environ.get(PARENT_RUN_ENV)
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    try:
        now = _now_ms()
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
    """The newest FINISHED run carrying all these tags (config hash, data digest, code), if any.

    Only FINISHED: a FAILED or KILLED run is never reused, whatever it holds.
    """
    client, experiment_id = store.open_experiment(uri, experiment)
    terms = [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
    runs = client.search_runs(
        [experiment_id],
        " and ".join([*terms, "attributes.status = 'FINISHED'"]),
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0].info.run_id if runs else None


def set_tags(run_id: str, tags: dict[str, str], uri: str | None = None) -> None:
    from mlflow.entities import RunTag

    store.client(uri).log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def run_artifact(run_id: str, path: str, uri: str | None = None) -> Path:
    """Download one artifact of a run (``model.npz``, ``config.yaml``) to a local path."""
    from mlflow.artifacts import download_artifacts

    return Path(
        download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=store.tracking_uri(uri))
    )
