"""Matplotlib figures: the report's loss/accuracy curves and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs happen on headless machines

import matplotlib.pyplot as plt
import numpy as np


def curves(history: Sequence[dict[str, float]], best_epoch: int, title: str, path: Path) -> Path:
    """Train and validation loss and accuracy per epoch, the restored best epoch marked."""
    epochs = np.arange(1, len(history) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, label in zip(axes, ("loss", "accuracy"), ("cross-entropy loss", "accuracy")):
        for split, style in (("train", "-"), ("val", "--")):
            ax.plot(epochs, [h[f"{split}_{metric}"] for h in history], style, label=split)
        ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"best epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    return np.bincount(labels * n_classes + predicted, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def confusion_figure(matrix: np.ndarray, title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if i == j else "black",
        )
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
