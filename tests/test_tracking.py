"""MLflow records: read back with MlflowClient from a temporary store."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from optuna.storages.journal import JournalFileSymlinkLock

from pipeline import cli, train
from pipeline.artifacts import load_model
from pipeline.config import ROOT, TrackingConfig, TrainConfig, TrainerConfig
from pipeline.data import Dataset
from pipeline.fit import Result, evaluate
from pipeline.tracking import lifecycle
from pipeline.tracking.runs import PARENT_RUN_ENV, Tracker, end_status, run_artifact

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
    # MLflow's own Source and Git fields, not only ours
    assert tags["mlflow.source.git.commit"] == tags["git.commit"]
    assert tags["mlflow.source.name"] and tags["mlflow.source.type"] == "LOCAL"  # (the command:
    # see the multirun test; here it is whatever runs pytest)
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


def multirun(store: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m pipeline.train -m ...`` of one-epoch jobs into ``store``; it must succeed."""
    cmd = [sys.executable, "-m", "pipeline.train", "-m", *args, "trainer.epochs=1"]
    cmd += [f"tracking.uri={store}", f"hydra.sweep.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


@pytest.mark.parametrize(  # submitit's own path is tested in test_launchers (make test)
    "launcher", ["joblib", pytest.param("submitit_local", marks=pytest.mark.slow)]
)
def test_multirun_is_one_parent_with_children(store: str, tmp_path, launcher: str) -> None:
    """Hydra's parallel launchers (joblib, the default; submitit's local executor, as on a
    cluster): one MLflow parent run, one child per job, each job's lines in its own log."""
    multirun(store, tmp_path, f"hydra/launcher={launcher}", "experiment=sigmoid,relu", *SMALL)
    all_runs = runs(store)
    (parent,) = [r for r in all_runs if r.data.tags.get("kind") == "multirun"]
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["preset"] for r in children) == ["relu", "sigmoid"]
    assert {r.data.tags["mlflow.source.name"] for r in [parent]} == {"python -m pipeline.train"}
    assert {r.info.status for r in all_runs} == {"FINISHED"}
    for job in ("0", "1"):  # Hydra's job log holds the run's lines
        assert "test accuracy" in (tmp_path / job / "train.log").read_text()


def test_a_multirun_labels_its_jobs_and_sums_them_up(store: str, tmp_path) -> None:
    """Jobs side by side: each line names its job, the parent run is named after what the
    multirun sweeps, and the end gives the mean ± sd over each configuration's seeds; the
    joblib launcher's settings line is gone (its list of jobs stays)."""
    out = multirun(  # with progress (SMALL without its last key): the epoch lines
        store, tmp_path, "experiment=sigmoid,relu", "trainer.seed=0,1", *SMALL[:2]
    )
    lines = out.stdout.splitlines()
    assert "Joblib.Parallel(" not in out.stdout and "#3 : experiment=relu" in out.stdout
    for n, label in enumerate(["sigmoid seed=0", "sigmoid seed=1", "relu seed=0", "relu seed=1"]):
        mine = [line for line in lines if line.startswith(f"[#{n} {label}] ")]
        assert [line.split()[3] for line in mine[:2]] == ["epoch", "test"], mine
    all_runs = runs(store)
    (parent,) = [r for r in all_runs if r.data.tags.get("kind") == "multirun"]
    assert parent.info.run_name == "multirun experiment=sigmoid,relu seed=0,1"
    children = [r for r in all_runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    summary = lines[lines.index("test accuracy over the jobs of each configuration (mean ± sd):") :]
    for preset in ("sigmoid", "relu"):
        accuracies = [
            r.data.metrics["test_accuracy"] for r in children if r.data.tags["preset"] == preset
        ]
        mean, sd = statistics.mean(accuracies), statistics.stdev(accuracies)
        assert f"  {preset:<7}  {mean:.2%} ± {sd:.2%}  (2 jobs)" in summary


# In-process records of a scripted result: what a run holds and how it ends, in about a second.


def tracked_config(store: str, **tracking: object) -> TrainConfig:
    cfg = TrainConfig(trainer=TrainerConfig(progress=False))
    options = {"figures": False, "model": False, **tracking}
    cfg.tracking = TrackingConfig(uri=store, experiment="scripted", **options)
    return cfg


def scripted_result(pruned: bool = False, learned: bool = True) -> Result:
    from pipeline.network import Network

    history = [
        {"train_loss": 1.5, "train_accuracy": 0.5, "val_loss": 1.25, "val_accuracy": 0.625},
        {"train_loss": 1.0, "train_accuracy": 0.75, "val_loss": 0.75, "val_accuracy": 0.875},
        {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 1.0, "val_accuracy": 0.75},
    ]
    net = Network([2, 2], "tanh", "zeros", np.random.default_rng(0), "float32")
    nan = float("nan")
    return Result(
        net, history, 2, 3, nan if pruned else 0.5, nan if pruned else 0.8125, 4.0,
        "pruned at epoch 3" if pruned else "early stopping", learned, pruned,
    )  # fmt: skip


def tiny_data() -> Dataset:
    from pipeline.data import Arrays

    arrays = Arrays(np.zeros((3, 2)), np.eye(2)[[0, 1, 1]], np.array([0, 1, 1]))
    return Dataset(arrays, arrays, arrays, "f" * 64, "tiny", None, np.zeros((3, 2)))


def record(store: str, result: Result, tags: dict | None = None, **tracking) -> str:
    cfg = tracked_config(store, **tracking)
    with Tracker(cfg, "scripted run", {"optimizer.lr": "0.1"}, tags or {}) as tracker:
        beat = lifecycle.HEARTBEAT._beats[tracker.run_id]  # the run beats while it runs
        MlflowClient(store).set_tag(tracker.run_id, lifecycle.HEARTBEAT_TAG, "0")
        beat()
        tags_now = MlflowClient(store).get_run(tracker.run_id).data.tags
        assert abs(float(tags_now[lifecycle.HEARTBEAT_TAG]) - time.time()) < 60
        tracker.log_dataset(tiny_data())
        for epoch, metrics in enumerate(result.history, 1):
            tracker(epoch, metrics)
        tracker.log_result(result, tiny_data())
    return tracker.run_id


def test_system_metrics_follow_mlflow_s_own_switch(store: str, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    run = MlflowClient(store).get_run(record(store, scripted_result()))
    assert not [k for k in run.data.metrics if k.startswith("system/")]
    assert "test_accuracy" in run.data.metrics


def test_a_tracker_records_everything_and_ends_finished(store: str, monkeypatch) -> None:
    monkeypatch.setenv(PARENT_RUN_ENV, "parent-of-all")
    run_id = record(store, scripted_result(), {"preset": "tiny"})
    client = MlflowClient(store)
    run = client.get_run(run_id)
    assert (run.info.status, run.info.run_name) == ("FINISHED", "scripted run")
    assert run.info.end_time >= run.info.start_time
    assert run.data.params == {"optimizer.lr": "0.1"}
    tags = run.data.tags
    assert tags["preset"] == "tiny" and tags["mlflow.parentRunId"] == "parent-of-all"
    assert tags["kind"] == "run"  # unless the caller names another kind
    assert {"git.commit", "code_version", lifecycle.OWNERS_TAG, lifecycle.HEARTBEAT_TAG} <= set(
        tags
    )
    assert tags[lifecycle.OWNERS_TAG] == lifecycle.me()
    assert (tags["stop_reason"], tags["learned"], tags["outcome"]) == (
        "early stopping", "true", "complete",
    )  # fmt: skip
    system = {k for k in run.data.metrics if k.startswith("system/")}  # MLflow's, at the end
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= system
    assert {k: v for k, v in run.data.metrics.items() if k not in system} == {
        "best_epoch": 2, "stopped_epoch": 3, "best_val_loss": 0.75, "best_val_accuracy": 0.875,
        "train_seconds": 4.0, "test_loss": 0.5, "test_accuracy": 0.8125, "test_accuracy_pct": 81.25,
        "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 1.0, "val_accuracy": 0.75,
    }  # fmt: skip
    steps = client.get_metric_history(run_id, "val_loss")
    assert [(m.step, m.value) for m in sorted(steps, key=lambda m: m.step)] == [
        (1, 1.25), (2, 0.75), (3, 1.0),
    ]  # fmt: skip
    assert {m.step for m in client.get_metric_history(run_id, "test_accuracy")} == {0}
    assert {a.path for a in client.list_artifacts(run_id)} == {
        "config.yaml", "history.csv", "model.npz",
    }  # fmt: skip
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("tiny", "f" * 16)
    assert dataset.dataset.profile == '{"train": 3, "validation": 3, "test": 3}'
    assert dataset.tags[0].key == "mlflow.data.context" and dataset.tags[0].value == "training"
    assert "model_uri" not in tags  # weights are logged, a servable model only on request
    assert json.loads(dataset.dataset.source) == {"uri": (ROOT / "data" / "mnist").as_uri()}
    assert dataset.dataset.source_type == "local"
    assert not lifecycle.HEARTBEAT._beats.get(run_id)  # it stops beating once ended


def test_a_pruned_run_ends_killed_without_test_metrics_or_files(store: str) -> None:
    run = MlflowClient(store).get_run(record(store, scripted_result(pruned=True)))
    assert run.info.status == "KILLED"
    assert run.info.run_name == "scripted run (pruned at epoch 3)"
    assert run.data.tags["outcome"] == "pruned"
    assert not {"test_loss", "test_accuracy"} & set(run.data.metrics)
    assert not MlflowClient(store).list_artifacts(run.info.run_id)


def test_a_run_that_never_learned_says_so_and_still_finishes(store: str) -> None:
    run = MlflowClient(store).get_run(record(store, scripted_result(learned=False)))
    assert (run.info.status, run.info.run_name) == ("FINISHED", "scripted run (never learned)")
    assert (run.data.tags["outcome"], run.data.tags["learned"]) == ("never learned", "false")


def test_the_files_of_a_run_keep_their_folder(store: str, tmp_path) -> None:
    files = tmp_path / "files"  # not the test's folder: the store lives there
    files.mkdir()
    (files / "table.csv").write_text("a\n1\n")
    with Tracker(tracked_config(store), "n", {}, {}) as tracker:
        tracker.log_artifacts(files, "tables")
    listed = MlflowClient(store).list_artifacts(tracker.run_id, "tables")
    assert [a.path for a in listed] == ["tables/table.csv"]


def test_weights_are_left_out_on_request(store: str) -> None:
    run_id = record(store, scripted_result(), log_weights=False)
    assert {a.path for a in MlflowClient(store).list_artifacts(run_id)} == {
        "config.yaml",
        "history.csv",
    }


def test_a_tracker_cuts_a_long_error_to_what_a_tag_holds(store: str) -> None:
    with pytest.raises(ValueError), Tracker(tracked_config(store), "n", {}, {}) as tracker:
        raise ValueError("e" * 6000)
    error = MlflowClient(store).get_run(tracker.run_id).data.tags["error"]
    assert error == ("ValueError: " + "e" * 6000)[:5000]


@pytest.mark.parametrize(
    ("error", "status"),
    [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED"), (SystemExit(1), "KILLED")],
)
def test_how_a_run_ends_follows_the_exception(store: str, error, status: str) -> None:
    assert end_status(None) == "FINISHED" and end_status(error) == status
    with pytest.raises(type(error)), Tracker(tracked_config(store), "n", {}, {}) as tracker:
        tracker(1, {"val_loss": 0.5})
        raise error
    run = MlflowClient(store).get_run(tracker.run_id)
    assert run.info.status == status
    own = {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")}
    assert own == {"val_loss": 0.5}  # the epochs before the end are kept
    assert ("error" in run.data.tags) == (status == "FAILED")
    if status == "FAILED":
        assert run.data.tags["error"] == "RuntimeError: boom"


def test_an_interrupt_inside_optunas_lock_release_ends_the_run_killed_and_says_interrupted(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # seen in make test: a worker's SIGTERM landed between the two steps of Optuna's journal
    # lock release, whose clean-up then raised FileNotFoundError: the run ended FAILED
    lock = JournalFileSymlinkLock(str(tmp_path / "study.journal"))
    lock.acquire()
    unlink = os.unlink

    def unlink_then_signal(path: str) -> None:  # the signal lands right after the unlink
        unlink(path)
        monkeypatch.setattr(os, "unlink", unlink)
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(os, "unlink", unlink_then_signal)
    tracked = Tracker(tracked_config(store), "n", {}, {})
    with pytest.raises(FileNotFoundError) as caught, tracked as tracker:
        lock.release()
    assert MlflowClient(store).get_run(tracker.run_id).info.status == "KILLED"

    def body() -> None:
        raise caught.value

    with pytest.raises(SystemExit) as ended:  # one line, not a traceback
        cli.command(body, "run it again")
    assert ended.value.code == "interrupted: run it again"


def test_metrics_are_sent_in_batches_once_the_flush_interval_passed(store, monkeypatch) -> None:
    from pipeline.tracking import runs
    from pipeline.tracking import store as tracking_store

    client, experiment = tracking_store.open_experiment(store, "scripted")
    param_batches: list[int] = []

    class Recording:
        def __getattr__(self, name: str):
            return getattr(client, name)

        def log_batch(self, run_id, params=(), **kwargs):
            param_batches.append(len(params))
            return client.log_batch(run_id, params=params, **kwargs)

    monkeypatch.setattr(
        tracking_store, "open_experiment", lambda uri, name: (Recording(), experiment)
    )
    with Tracker(tracked_config(store), "n", {f"p{i}": str(i) for i in range(250)}, {}) as t:
        assert param_batches == [100, 100, 50]  # a tracking server takes 100 at most
        monkeypatch.setattr(runs, "FLUSH_SECONDS", 3600.0)
        t(1, {"val_loss": 0.5})
        client = MlflowClient(store)
        assert client.get_run(t.run_id).data.metrics == {}  # batched, not sent yet
        monkeypatch.setattr(runs, "FLUSH_SECONDS", -1.0)
        sizes: list[int] = []
        log_batch = t.client.log_batch

        def recorded(run_id, metrics=(), **kwargs):
            sizes.append(len(metrics))
            return log_batch(run_id, metrics=metrics, **kwargs)

        monkeypatch.setattr(t.client, "log_batch", recorded)
        t(2, {f"m{i}": float(i) for i in range(1200)})  # more than one batch of 1000
        assert sizes == [1000, 201]  # a tracking server refuses more than 1000 at once
        t(3, {"val_loss": 0.25})  # and goes on after a flush
        assert len(client.get_run(t.run_id).data.metrics) == 1201
        assert len(client.get_run(t.run_id).data.params) == 250
        assert client.get_run(t.run_id).info.status == "RUNNING"


def test_an_outage_mid_run_keeps_the_rest_of_the_record(store: str, tmp_path, caplog) -> None:
    import requests

    class Down:
        def __getattr__(self, name: str):
            def fail(*args, **kwargs):
                raise requests.ConnectionError(reason)

            return fail

    reason = "Connection refused " + "x" * 300
    files = tmp_path / "files"
    files.mkdir()
    (files / "a.txt").write_text("a")
    cfg = tracked_config(store, outbox=str(tmp_path / "outbox"), model=True)
    before = int(time.time() * 1000)
    with Tracker(cfg, "n", {}, {}) as tracker:
        tracker.client = Down()
        tracker(1, {"val_loss": 0.5})
        tracker.flush()
        tracker.set_tags({"k": "v"})
        tracker.log_dataset(tiny_data())  # left out: the upload sends the record, not this
        tracker.log_model(tmp_path, tiny_data())  # the model waits: model.npz is in the box
        tracker.log_artifacts(files, "sub")
        tracker._ending = ("KILLED", "n (pruned at epoch 1)")
    kept_in = tmp_path / "outbox" / tracker.run_id
    kept = json.loads((kept_in / "record.json").read_text())
    assert kept["status"] == "KILLED" and kept["tags"] == {"k": "v"}
    assert before <= kept["end_time"] <= int(time.time() * 1000)
    assert kept["uri"] == store  # the run's own store, to upload to
    assert [m[0::3] for m in kept["metrics"]] == [["val_loss", 1]]
    assert (kept_in / "artifacts" / "sub" / "a.txt").read_text() == "a"
    assert f"the run's record is kept in {kept_in}" in caplog.text
    assert f"cannot write to the tracking store ({reason[:200]}): training goes on" in caplog.text


def test_only_an_unreachable_store_counts_as_an_outage() -> None:
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    from pipeline.tracking.runs import is_outage

    assert is_outage(requests.ConnectionError()) and is_outage(requests.Timeout())
    assert is_outage(OSError()) and is_outage(sqlalchemy.exc.OperationalError("s", {}, None))
    assert is_outage(MlflowException("API request to x failed: Max retries exceeded"))
    assert is_outage(MlflowException("API request to x: Connection aborted"))
    assert is_outage(MlflowException("API request to x timed out"))
    assert not is_outage(MlflowException("API request to x: INVALID_PARAMETER_VALUE"))
    assert not is_outage(MlflowException("Max retries exceeded"))
    assert not is_outage(ValueError("Connection"))


def test_a_table_run_holds_csv_files_and_metrics(store: str, monkeypatch) -> None:
    from pipeline.tracking.runs import log_tables, set_tags

    monkeypatch.setenv(PARENT_RUN_ENV, "the-parent")
    cfg = tracked_config(store)
    tables = {"rows": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], "one": [{"c": 3}]}
    run_id = log_tables(cfg, "gradcheck", tables, {"worst": 0.25}, {"extra": "1"})
    client = MlflowClient(store)
    run = client.get_run(run_id)
    assert (run.info.status, run.info.run_name) == ("FINISHED", "gradcheck")
    assert run.data.metrics == {"worst": 0.25}
    assert [m.step for m in client.get_metric_history(run_id, "worst")] == [0]
    assert run_artifact(run_id, "one.csv", store).read_text().splitlines() == ["c", "3"]
    tags = run.data.tags
    assert (tags["kind"], tags["extra"], tags["mlflow.parentRunId"]) == (
        "gradcheck",
        "1",
        "the-parent",
    )
    assert "code_version" in tags and tags[lifecycle.OWNERS_TAG] == lifecycle.me()
    assert run_artifact(run_id, "rows.csv", store).read_text().splitlines() == ["a,b", "1,x", "2,y"]
    set_tags(run_id, {"later": "yes"}, store)
    assert client.get_run(run_id).data.tags["later"] == "yes"
    with pytest.raises(IndexError):
        log_tables(cfg, "broken", {"empty": []}, {}, {})
    (broken,) = [r for r in runs(store) if r.info.run_name == "broken"]
    assert broken.info.status == "FAILED"


class Failing:
    """A client whose ``method`` raises ``error`` for the first ``times`` calls, the rest
    reaching the real client."""

    def __init__(self, client, method: str, error: BaseException, times: int = 1) -> None:
        self.client, self.method, self.error, self.times = client, method, error, times
        self.calls = 0

    def __getattr__(self, name: str):
        if name != self.method:
            return getattr(self.client, name)

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls <= self.times:
                raise self.error
            return getattr(self.client, name)(*args, **kwargs)

        return call


def test_a_store_that_refuses_the_run_is_one_line_or_the_error_itself(
    store: str, monkeypatch
) -> None:
    import requests

    from pipeline.tracking import store as tracking_store

    client, experiment = tracking_store.open_experiment(store, "scripted")
    for error, expected in [
        (requests.ConnectionError("Connection refused\nmore"), tracking_store.StoreError),
        (ValueError("bad name"), ValueError),
    ]:
        failing = Failing(client, "create_run", error)
        monkeypatch.setattr(
            tracking_store, "open_experiment", lambda uri, name, c=failing: (c, experiment)
        )
        with pytest.raises(expected) as err, Tracker(tracked_config(store), "n", {}, {}):
            pass
        if expected is tracking_store.StoreError:
            assert str(err.value) == "cannot create a run: Connection refused"
    assert not runs(store)


def test_a_run_whose_parameters_fail_is_not_left_running(store: str, monkeypatch) -> None:
    from pipeline.tracking import store as tracking_store

    client, experiment = tracking_store.open_experiment(store, "scripted")
    failing = Failing(client, "log_batch", ValueError("param refused"))
    monkeypatch.setattr(tracking_store, "open_experiment", lambda uri, name: (failing, experiment))
    with pytest.raises(ValueError), Tracker(tracked_config(store), "n", {"a": "1"}, {}):
        pass
    (run,) = runs(store)
    assert run.info.status == "FAILED" and run.data.tags["error"] == "ValueError: param refused"


def test_the_data_set_is_logged_again_after_a_lost_race(store: str) -> None:
    with Tracker(tracked_config(store), "n", {}, {}) as tracker:
        tracker.client = Failing(tracker.client, "log_inputs", ValueError(), times=0)
        tracker.log_dataset(tiny_data())
        assert tracker.client.calls == 1  # nothing lost: sent once
    with Tracker(tracked_config(store), "n", {}, {}) as tracker:
        tracker.client = Failing(tracker.client, "log_inputs", ValueError("UNIQUE constraint"))
        tracker.log_dataset(tiny_data())
        assert tracker.client.calls == 2
    (dataset,) = MlflowClient(store).get_run(tracker.run_id).inputs.dataset_inputs
    assert dataset.dataset.name == "tiny"
    with Tracker(tracked_config(store), "n", {}, {}) as tracker:  # failing twice: not a race
        tracker.client = Failing(tracker.client, "log_inputs", ValueError("other"), times=2)
        tracker.log_dataset(tiny_data())
        assert tracker.outbox is not None  # any write that fails keeps the record aside


def test_the_logged_model_prepares_raw_pixels_as_training_did(store: str) -> None:
    """The run's MLflow model takes raw pixels and normalises them with the training split's
    statistics (``train_stats``) before predicting: here only that order of operations gives
    the classes below."""
    import mlflow

    result = scripted_result()
    result.network.weights[0][:] = [[1.0, -1.0], [0.0, 0.0]]  # class 0 iff the first x > 0
    data = tiny_data()
    pixels = np.array([[100.0, 0.0], [200.0, 0.0], [10.0, 255.0]])
    data = Dataset(data.train, data.val, data.test, data.digest, "tiny", (0.5, 0.25), pixels)
    cfg = tracked_config(store, model=True, figures=True)
    cfg.data.normalize = "train_stats"
    with Tracker(cfg, "served", {}, {}) as tracker:
        tracker.log_result(result, data)
    tags = MlflowClient(store).get_run(tracker.run_id).data.tags
    model = mlflow.pyfunc.load_model(tags["model_uri"])
    # (p / 255 - 0.5) / 0.25 > 0 iff p > 127.5; per image, the first pixel is above the mean
    assert model.predict(pixels.astype(np.float32)).tolist() == [1, 0, 1]
    matrix = run_artifact(tracker.run_id, "confusion_matrix.csv", store).read_text()
    assert matrix.splitlines() == ["1,0", "2,0"]  # labels 0, 1, 1 of blank images: all say 0
