"""The command lines, run as a user runs them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mlflow import MlflowClient

from pipeline import evaluate
from pipeline.config import ROOT
from tests.conftest import new_store

SMALL = ["data.max_train=2000", "data.max_test=500", "trainer.epochs=2", "tracking=none"]


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_train_prints_epochs_and_test_metrics(tmp_path) -> None:
    out = run("pipeline.train", "experiment=relu", *SMALL, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert "epoch   2" in out.stdout and "test accuracy" in out.stdout


def test_invalid_config_is_one_line_error(tmp_path) -> None:
    out = run("pipeline.train", "optimizer.lr=-1", *SMALL, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: optimizer.lr=-1.0 is invalid: expected a finite number > 0"
    )


def test_multirun_runs_each_job(tmp_path) -> None:
    out = run(
        "pipeline.train", "-m", "experiment=sigmoid,relu", *SMALL, f"hydra.sweep.dir={tmp_path}"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("test accuracy") == 2


def test_gradcheck_cli_passes() -> None:
    out = run("pipeline.gradcheck", "tracking=none", "data.max_train=100", "data.max_test=10")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Output bias" in out.stdout and out.stdout.rstrip().endswith("PASS")


def test_help_shows_groups_keys_and_examples_not_the_whole_config() -> None:
    out = run("pipeline.train", "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "experiment   l1, l2, momentum, relu, sigmoid, softmax" in text  # the groups
    assert "optimizer    lr gamma" in text and "epochs batch_size patience" in text  # keys
    assert "python -m pipeline.train experiment=relu" in text  # examples
    assert "--cfg job" in text and "--config-dir" in text
    assert "sha256" not in text and "train-images-idx3-ubyte" not in text  # --cfg job's
    assert len(text.splitlines()) < 45


def test_evaluate_usage_names_the_module_and_the_run_id(capsys) -> None:
    with pytest.raises(SystemExit):
        evaluate.main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m pipeline.evaluate [-h] [--uri URI] RUN_ID")
    assert "RUN_ID      the MLflow run: the id pipeline.train prints" in text


def test_own_presets_and_search_spaces_from_a_config_dir(tmp_path, migrated_store) -> None:
    """The README's ``--config-dir``: a preset and a search space of the user's, beside the
    project's, in training, in a run's name and in a sweep's spawned workers; the run's id is
    printed with its UI link."""
    own = tmp_path / "my_conf"
    (own / "experiment").mkdir(parents=True)
    (own / "sweep").mkdir()
    (own / "experiment" / "narrow.yaml").write_text(
        "# @package _global_\ndefaults:\n  - relu\npreset: narrow\nmodel:\n  hidden: [32]\n"
    )
    (own / "sweep" / "lr.yaml").write_text(
        "name: lr\nparams:\n  optimizer.lr: {type: float, low: 0.01, high: 0.5, log: true}\n"
    )
    uri = new_store(tmp_path / "mlruns", migrated_store)
    out = run(
        "pipeline.train", "--config-dir", str(own), "experiment=narrow", *SMALL,
        "tracking=mlflow", f"tracking.uri={uri}", "tracking.model=false",
        f"hydra.run.dir={tmp_path}/train",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    client = MlflowClient(uri)
    (recorded,) = client.search_runs([client.get_experiment_by_name("mnist-mlp").experiment_id])
    run_id, experiment_id = recorded.info.run_id, recorded.info.experiment_id
    ui = f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
    assert f"mlflow run {run_id}  {ui}" in out.stdout  # the id, and where to see it
    assert recorded.data.params["model.hidden"] == "[32]"
    assert recorded.info.run_name == "narrow train=2000 test=500 ep=2 seed0"  # against its preset
    out = run(
        "sweeps", "--config-dir", str(own), "sweep=lr", "experiment=narrow", "n_trials=2",
        "workers=2", *SMALL, f"study.storage=journal:{tmp_path}/study.journal",
        f"hydra.run.dir={tmp_path}/sweep",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count(" COMPLETE val_loss ") == 2  # each composed narrow in a worker
