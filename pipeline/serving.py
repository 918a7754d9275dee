"""The trained network as an MLflow model: registrable, loadable with ``mlflow.pyfunc``, served by
``mlflow models serve --env-manager local``.

It takes what a user has: raw pixels, 0-255, one image of 784 values per row, and normalises
them as training did (per image, or with the training split's statistics, which the model
keeps). It returns the predicted digit of each row.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from pipeline.artifacts import load_model
from pipeline.data import normalize
from pipeline.fit import predict

PIP_REQUIREMENTS = [f"mlflow=={mlflow.__version__}", f"numpy=={np.__version__}"]


class Classifier(mlflow.pyfunc.PythonModel):
    """Pixels (n, 784), 0-255 -> digits (n,)."""

    def load_context(self, context: Any) -> None:
        self.net = load_model(Path(context.artifacts["weights"]))
        self.preprocessing = json.loads(Path(context.artifacts["preprocessing"]).read_text())

    def predict(self, context: Any, model_input: np.ndarray, params: dict | None = None) -> Any:
        # np.ndarray: MLflow validates it against the signature logged with the model
        pixels = np.asarray(model_input, dtype=np.float64).reshape(-1, self.net.sizes[0])
        p = self.preprocessing
        stats = tuple(p["stats"]) if p["stats"] else None
        x = normalize(pixels, p["normalize"], stats, self.net.dtype.name)
        return predict(self.net, x).astype(np.int64)


def model_name(run_name: str) -> str:
    """The run's name as an MLflow model name: ``relu-seed0``; ``relu lr=0.05 seed0`` ->
    ``relu-lr=0_05-seed0``. The models list then tells the runs apart; MLflow refuses
    ``/ : . % " '`` in the name, and ``runs:/<run id>/<model name>`` should need neither shell
    quotes nor URL escapes, so only letters, digits and ``_ = + -`` are kept."""
    return re.sub(r"[^\w=+-]", "_", run_name.strip().replace(" ", "-")) or "model"


def log(
    client: Any, run_id: str, name: str, folder: Path, example: np.ndarray, preprocessing: dict
) -> str:
    """Log the network in ``folder/model.npz`` as the run's MLflow model, named after the run
    (``model_name``); return its URI (``models:/...``)."""
    (folder / "preprocessing.json").write_text(json.dumps(preprocessing))
    pixels = example.astype(np.float32)  # what JSON carries: numbers, 0-255
    mlflow.set_tracking_uri(client.tracking_uri)  # Model.log speaks to the fluent API's store
    # ... and files the model under the fluent API's experiment (else "Default", where the
    # run's page never finds it)
    mlflow.set_experiment(experiment_id=client.get_run(run_id).info.experiment_id)
    return _log(folder, run_id, model_name(name), pixels).model_uri


def _log(folder: Path, run_id: str, name: str, pixels: np.ndarray) -> Any:
    from mlflow.models import Model, infer_signature

    return Model.log(
        artifact_path=None,
        name=name,
        flavor=mlflow.pyfunc,
        run_id=run_id,
        python_model=str(Path(__file__).with_name("served_model.py")),
        artifacts={
            "weights": str(folder / "model.npz"),
            "preprocessing": str(folder / "preprocessing.json"),
        },
        signature=infer_signature(pixels, np.zeros(len(pixels), np.int64)),
        input_example=pixels,
        pip_requirements=PIP_REQUIREMENTS,
        await_registration_for=0,
    )


def main(argv: list[str]) -> int:
    """``python -m pipeline.serving RUN_ID``: the URI of the run's model, ``runs:/<run
    id>/<model name>``, for ``make serve`` (the store: ``$MLFLOW_TRACKING_URI`` or the
    project's)."""
    from mlflow.exceptions import MlflowException

    from pipeline.tracking import store

    if len(argv) != 1:
        print("usage: python -m pipeline.serving RUN_ID", file=sys.stderr)
        return 2
    run_id = argv[0]
    try:
        client = store.client(store.tracking_uri())
        uri = client.get_run(run_id).data.tags.get("model_uri")
        name = client.get_logged_model(uri.removeprefix("models:/")).name if uri else None
    except (MlflowException, store.StoreError) as err:
        print(f"error: cannot read run {run_id}: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    if name is None:
        print(
            f"error: run {run_id} has no MLflow model (sweep trials and the report's re-runs "
            "keep only model.npz): serve a run of pipeline.train",
            file=sys.stderr,
        )
        return 1
    print(f"runs:/{run_id}/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
