"""What a run leaves behind, as files: config, history, figures, confusion matrix, weights.

``load_model`` reads the weights back into a ``Network``, so any recorded run can be
re-evaluated (``python -m pipeline.evaluate RUN_ID``).
"""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from pipeline import plots
from pipeline.config import TrainConfig, to_config
from pipeline.data import Dataset
from pipeline.fit import Result, predict
from pipeline.network import Network
from pipeline.tracking.store import mask


def save_config(cfg: TrainConfig, path: Path) -> Path:
    """The resolved config, credentials masked (it goes to the store and the outbox)."""
    path.write_text(mask(OmegaConf.to_yaml(OmegaConf.create(asdict(cfg)))))
    return path


def load_config(path: Path) -> TrainConfig:
    return to_config(OmegaConf.load(path))


def save_model(net: Network, path: Path) -> Path:
    np.savez(path, theta=net.theta, sizes=np.array(net.sizes), activation=net.activation)
    return path


def load_model(path: Path) -> Network:
    with np.load(path) as saved:
        sizes = [int(n) for n in saved["sizes"]]
        net = Network(
            sizes,
            str(saved["activation"]),
            "zeros",
            np.random.default_rng(0),
            saved["theta"].dtype.name,
        )
        net.theta[...] = saved["theta"]
    return net


def write_run(folder: Path, cfg: TrainConfig, result: Result, data: Dataset) -> None:
    """Every artifact of one training run, written into ``folder``."""
    save_config(cfg, folder / "config.yaml")
    with open(folder / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *result.history[0]])
        writer.writeheader()
        writer.writerows({"epoch": i, **h} for i, h in enumerate(result.history, 1))
    if cfg.tracking.figures:
        title = (
            f"{cfg.preset}: test accuracy {result.test_accuracy:.2%}, loss {result.test_loss:.4f}"
        )
        plots.curves(result.history, result.best_epoch, title, folder / "curves.png")
        n_classes = data.test.t.shape[1]
        predicted = predict(result.network, data.test.x)
        matrix = plots.confusion_matrix(data.test.y, predicted, n_classes)
        np.savetxt(folder / "confusion_matrix.csv", matrix, fmt="%d", delimiter=",")
        plots.confusion_figure(
            matrix, f"{cfg.preset}: test confusion matrix", folder / "confusion_matrix.png"
        )
    if cfg.tracking.log_weights:
        save_model(result.network, folder / "model.npz")
