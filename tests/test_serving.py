"""A run's network as an MLflow model: loaded with pyfunc, registered, and served over HTTP on
loopback by ``mlflow models serve``, predicting the logged test accuracy exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import mlflow
import numpy as np

from pipeline import train
from pipeline.data import load_raw
from tests.conftest import free_port, wait_http


def test_a_logged_model_loads_registers_and_serves(make_config, store: str, tmp_path: Path) -> None:
    cfg = make_config(
        "experiment=relu",
        "data.max_train=2000",
        "data.max_test=500",
        "trainer.epochs=2",
        "trainer.progress=false",
        f"tracking.uri={store}",
    )
    result = train.run(cfg)
    client = mlflow.MlflowClient(store)
    run = client.get_run(result.run_id)
    uri = run.data.tags["model_uri"]
    # filed with its run, where the run page and the Models column look for it
    (model,) = client.search_logged_models([run.info.experiment_id])
    assert model.source_run_id == result.run_id and model.name == "model"
    raw, _ = load_raw(cfg.data)
    pixels = raw["test_images"][:500].reshape(500, -1).astype(np.float32)  # what users have
    labels = raw["test_labels"][:500]

    mlflow.set_tracking_uri(store)
    loaded = mlflow.pyfunc.load_model(uri)
    assert np.mean(loaded.predict(pixels) == labels) == result.test_accuracy
    assert int(mlflow.register_model(uri, "mnist-mlp").version) == 1

    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")),
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={  # it starts uvicorn from PATH: the venv's, as in an activated venv
                **os.environ,
                "MLFLOW_TRACKING_URI": store,
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            },
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", proc, log)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": pixels.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            predictions = np.array(json.loads(response.read())["predictions"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    assert predictions.shape == (500,)
    assert np.mean(predictions == labels) == result.test_accuracy  # over HTTP, exactly
