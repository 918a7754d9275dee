"""The raw records the verifier derives numbers from: MLflow runs (their metrics, parameters,
tags and artifacts) and Optuna studies (their trials), read once through the libraries' own
clients, never through the product's code."""

from __future__ import annotations

import itertools
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORE = f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}"
DEFAULT_JOURNAL = ROOT / "mlruns" / "optuna" / "studies.journal"


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]

    @property
    def accuracy(self) -> float:
        """Test accuracy in percent, as the report prints it."""
        return 100 * self.metrics["test_accuracy"]

    @property
    def loss(self) -> float:
        return self.metrics["test_loss"]

    @property
    def stop(self) -> float:
        return self.metrics["stopped_epoch"]


class Records:
    def __init__(
        self, uri: str, experiment: str, storage: str | None = None, code: str | None = None
    ) -> None:
        """Every run of ``experiment`` (only those of core code version ``code`` if given: no
        other run can stand behind a number of a report made with that code)."""
        from mlflow import MlflowClient

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        self.uri, self.experiment, self.storage_url = uri, experiment, storage
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            raise LookupError(f"no experiment {experiment!r} in {uri}")
        self.experiment_id = found.experiment_id
        self.runs: dict[str, Run] = {}
        token = None
        while True:  # every run of the experiment, once
            page = self.client.search_runs([self.experiment_id], max_results=5000, page_token=token)
            for r in page:
                self.runs[r.info.run_id] = Run(
                    r.info.run_id, r.info.status, r.data.params, r.data.tags, r.data.metrics
                )
            token = page.token
            if not token:
                break
        self.tmp = tempfile.TemporaryDirectory(prefix="verify-")
        self._storages: dict[str, Any] = {}

    def run(self, run_id: str) -> Run | None:
        return self.runs.get(run_id)

    def matching(self, params: dict[str, str], like: Run) -> Run | None:
        """The FINISHED run with exactly these parameters, on the data and code of ``like``."""
        same = [
            r
            for r in self.runs.values()
            if r.status == "FINISHED"
            and r.params == params
            and r.tags.get("data.digest") == like.tags.get("data.digest")
            and r.tags.get("code_version") == like.tags.get("code_version")
            and "test_accuracy" in r.metrics
        ]
        return same[0] if same else None

    def artifact(self, run_id: str, path: str) -> Path:
        from mlflow.artifacts import download_artifacts

        folder = Path(self.tmp.name) / run_id
        return Path(
            download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(folder), tracking_uri=self.uri
            )
        )

    def weights(self, run_id: str) -> np.ndarray:
        """A network's weights without its biases: the first sum(fan_in * fan_out) entries of
        ``theta`` in ``model.npz`` (the layout the core saves)."""
        with np.load(self.artifact(run_id, "model.npz")) as saved:
            sizes = [int(n) for n in saved["sizes"]]
            n_weights = sum(a * b for a, b in itertools.pairwise(sizes))
            return saved["theta"][:n_weights].astype(np.float64)

    def study(self, name: str, storage: str) -> Any:
        """A study by name, from ``--storage`` or the storage its MLflow run records."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        url = self.storage_url or storage
        if url not in self._storages:
            self._storages[url] = open_storage(url)
        return optuna.load_study(study_name=name, storage=self._storages[url])


def open_storage(url: str) -> Any:
    """An Optuna storage from the URL a study's MLflow run records (``journal:<file>``, or an
    RDB URL; a masked password must come from the environment, e.g. PGPASSWORD)."""
    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    return optuna.storages.RDBStorage(re.sub(r":\*\*\*@", "@", url))


def default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE
