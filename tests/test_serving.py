"""A run's network as an MLflow model: loaded with pyfunc, registered, and served over HTTP on
loopback by the README's own commands from an activated environment, predicting the logged test
accuracy exactly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pipeline import serving, train
from pipeline.config import ROOT, to_config
from pipeline.data import load_raw
from pipeline.fit import Result
from tests.conftest import free_port, new_store, wait_http
from tools import activate

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory, migrated_store: Path) -> tuple[str, Result, np.ndarray, np.ndarray]:
    """A store with one small run and its model; the test set's raw pixels and labels."""
    store = new_store(tmp_path_factory.mktemp("served") / "mlruns", migrated_store)
    cfg = to_config(
        train.compose(
            [
                "experiment=relu",
                "data.max_train=2000",
                "data.max_test=500",
                "trainer.epochs=2",
                "trainer.progress=false",
                f"tracking.uri={store}",
            ]
        )
    )
    result = train.run(cfg)
    raw, _ = load_raw(cfg.data)
    pixels = raw["test_images"][:500].reshape(500, -1).astype(np.float32)  # what users have
    return store, result, pixels, raw["test_labels"][:500]


def test_a_logged_model_loads_and_registers(trained) -> None:
    store, result, pixels, labels = trained
    client = mlflow.MlflowClient(store)
    run = client.get_run(result.run_id)
    uri = run.data.tags["model_uri"]
    # filed with its run, where the run page and the Models column look for it
    (model,) = client.search_logged_models([run.info.experiment_id])
    assert model.source_run_id == result.run_id
    assert model.name == "relu-train=2000-test=500-ep=2-seed0"  # its run's name, as MLflow takes it
    mlflow.set_tracking_uri(store)
    loaded = mlflow.pyfunc.load_model(uri)
    assert np.mean(loaded.predict(pixels) == labels) == result.test_accuracy
    assert int(mlflow.register_model(uri, "mnist-mlp").version) == 1


def test_a_runs_model_uri_is_found_or_its_absence_said(trained, monkeypatch, capsys) -> None:
    store, result, _, _ = trained
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # as make serve sets it
    assert serving.main([result.run_id]) == 0
    assert capsys.readouterr().out == f"runs:/{result.run_id}/relu-train=2000-test=500-ep=2-seed0\n"
    client = mlflow.MlflowClient(store)
    bare = client.create_run(client.get_run(result.run_id).info.experiment_id).info.run_id
    client.set_terminated(bare)
    assert serving.main([bare]) == 1
    assert capsys.readouterr().err.startswith(f"error: run {bare} has no MLflow model (")
    assert serving.main(["nosuchrun"]) == 1
    assert "error: cannot read run nosuchrun: " in capsys.readouterr().err


def readme_mlflow_lines() -> list[str]:
    """The README's block of plain-MLflow commands, comments dropped."""
    text = (ROOT / "README.md").read_text()
    (block,) = re.findall(r"```sh\n(\. \.venv/bin/activate\n.*?)```", text, flags=re.S)
    return [line.split("  #")[0].strip() for line in block.splitlines()]


def clean_env() -> dict[str, str]:
    """A shell before activation: no MLflow store set, the venv not on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if Path(p) != VENV_BIN)
    return env


def predict_over_http(port: int, pixels: np.ndarray) -> np.ndarray:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=json.dumps({"inputs": pixels.tolist()}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return np.array(json.loads(response.read())["predictions"])


def test_the_readme_mlflow_commands_run_as_written(trained, tmp_path: Path) -> None:
    """Each line of the README's block, from the repository root in a shell that sourced the
    venv's activate script, patched as ``make install`` does but for the test's store."""
    store, result, pixels, labels = trained
    script = tmp_path / "activate"
    script.write_text(
        activate.patch((VENV_BIN / "activate").read_text(), Path(store.removeprefix("sqlite:///")))
    )
    name = serving.model_name(mlflow.MlflowClient(store).get_run(result.run_id).info.run_name)
    first, *lines = readme_mlflow_lines()
    assert first == ". .venv/bin/activate"
    stray = ROOT / "mlflow.db"
    stray_before = stray.exists()
    servers: list[tuple[int, subprocess.Popen, Path]] = []
    try:
        for i, line in enumerate(lines):
            line = line.replace("<run id>", result.run_id).replace("<model name>", name)
            command = f". {script} && {line}"
            if " serve " not in line:
                out = subprocess.run(
                    ["bash", "-c", command], cwd=ROOT, env=clean_env(), capture_output=True,
                    text=True, timeout=120,
                )  # fmt: skip
                assert out.returncode == 0, f"{line}\n{out.stdout}{out.stderr}"
                assert "search_runs" not in line or result.run_id in out.stdout, out.stdout
                continue
            port, log = free_port(), tmp_path / f"serve{i}.log"
            with open(log, "w") as sink:  # make serve's port, and mlflow's default port
                env = {**clean_env(), "MPORT": str(port), "MLFLOW_PORT": str(port)}
                proc = subprocess.Popen(
                    ["bash", "-c", command], cwd=ROOT, env=env, stdout=sink,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            servers.append((port, proc, log))
        assert len(servers) == 2
        for port, proc, log in servers:
            wait_http(f"http://127.0.0.1:{port}/ping", proc, log)
            predictions = predict_over_http(port, pixels)
            assert predictions.shape == (500,)
            assert np.mean(predictions == labels) == result.test_accuracy  # over HTTP, exactly
    finally:
        for _, proc, _ in servers:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    assert stray_before or not stray.exists(), "a README command made ./mlflow.db"


def test_activation_points_plain_mlflow_at_the_project_store() -> None:
    """The venv's own activate script: the project's store while active, the user's value (or
    none) after ``deactivate``; activating twice stacks nothing."""
    show = 'echo "${MLFLOW_TRACKING_URI-unset}"'
    steps = f". .venv/bin/activate && . .venv/bin/activate && {show} && deactivate && {show}"
    for before, after in ((None, "unset"), ("http://elsewhere:5000", "http://elsewhere:5000")):
        env = clean_env() | ({"MLFLOW_TRACKING_URI": before} if before else {})
        out = subprocess.run(
            ["bash", "-c", steps], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == [f"sqlite:///{ROOT}/mlruns/mlflow.db", after]
