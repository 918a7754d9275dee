"""MLflow records: read back with MlflowClient from a temporary store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from pipeline import train
from pipeline.artifacts import load_model
from pipeline.config import ROOT
from pipeline.fit import evaluate
from pipeline.tracking.runs import run_artifact

SMALL = ["data.max_train=2000", "data.max_test=500", "trainer.progress=false"]


def runs(store: str) -> list:
    client = MlflowClient(store)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_a_run_is_recorded_completely(make_config, store: str) -> None:
    cfg = make_config("experiment=relu", "trainer.epochs=3", f"tracking.uri={store}", *SMALL)
    result = train.run(cfg, tags={"hydra.overrides": "experiment=relu"})
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    # the name says what differs from the preset: a subset, three epochs
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "relu train=2000 test=500 ep=3 seed0"
    params = run.data.params
    assert params["optimizer.lr"] == "0.1" and params["model.activation"] == "relu"
    assert params["model.hidden"] == "[128]"
    # parameters are what a user would change: no bookkeeping, nothing that does not apply
    assert not [k for k in params if k.startswith(("tracking.", "data.sha256", "data.files"))]
    assert "regularizer.lam" not in params and "trainer.progress" not in params
    tags = run.data.tags
    assert tags["preset"] == "relu" and tags["hydra.overrides"] == "experiment=relu"
    assert tags["outcome"] == "complete" and tags["learned"] == "true"
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "mnist" and dataset.dataset.digest == tags["data.digest"][:16]
    assert '"train": 1600' in dataset.dataset.profile and '"test": 500' in dataset.dataset.profile
    assert tags["config_hash"] == cfg.training_hash() and len(tags["data.digest"]) == 64
    assert {"git.commit", "git.dirty", "code_version", "version.numpy"} <= tags.keys()
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_seconds"):
        history = client.get_metric_history(result.run_id, key)
        assert sorted(m.step for m in history) == [1, 2, 3]
    assert run.data.metrics["test_accuracy"] == result.test_accuracy
    assert run.data.metrics["stopped_epoch"] == 3
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert names == {
        "config.yaml",
        "history.csv",
        "curves.png",
        "confusion_matrix.png",
        "confusion_matrix.csv",
        "model.npz",
    }
    # the weights load back and give the logged test accuracy
    net = load_model(run_artifact(result.run_id, "model.npz", store))
    assert evaluate(net, train.load_data(cfg).test)[1] == result.test_accuracy


def test_a_failure_ends_failed_with_the_message(make_config, store: str) -> None:
    cfg = make_config("trainer.epochs=3", f"tracking.uri={store}", *SMALL)

    def broken(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError):
        train.run(cfg, hooks=[broken])
    (run,) = runs(store)
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "RuntimeError: injected failure"
    # the epochs before the failure are kept (the tracker is the first hook)
    history = MlflowClient(store).get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2]


def test_sigterm_ends_killed(store: str, tmp_path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "data.max_train=20000",
            "trainer.epochs=500",
            "trainer.patience=500",
            f"tracking.uri={store}",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (proc.stdout.readline().startswith("epoch")):  # training has started
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "KILLED" in err
    (run,) = runs(store)
    assert run.info.status == "KILLED"


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_multirun_is_one_parent_with_children(store: str, tmp_path, launcher: str) -> None:
    """Hydra's parallel launchers (joblib, the default; submitit's local executor, as on a
    cluster): one MLflow parent run, one child per job, each job's lines in its own log."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "-m",
            f"hydra/launcher={launcher}",
            "experiment=sigmoid,relu",
            "trainer.epochs=1",
            f"tracking.uri={store}",
            f"hydra.sweep.dir={tmp_path}",
            *SMALL,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    all_runs = runs(store)
    (parent,) = [r for r in all_runs if r.data.tags.get("kind") == "multirun"]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["preset"] for r in children) == ["relu", "sigmoid"]
    assert {r.info.status for r in all_runs} == {"FINISHED"}
    for job in ("0", "1"):  # Hydra's job log holds the run's lines
        assert "test accuracy" in (tmp_path / job / "train.log").read_text()
