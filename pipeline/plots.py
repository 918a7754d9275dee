"""Matplotlib figures: the report's loss/accuracy curves and a confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
from matplotlib.ticker import MaxNLocator


def curves(history: Sequence[dict[str, float]], best_epoch: int, title: str, path: Path) -> Path:
    """Train and validation loss and accuracy per epoch, the restored best epoch marked.

    Margins are fixed rather than computed (tight_layout): this is drawn after every run,
    and layout passes cost more than the drawing.
    """
    epochs = np.arange(1, len(history) + 1)
    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    shown = (("loss", "cross-entropy loss", 1), ("accuracy", "accuracy %", 100))
    for ax, (metric, label, scale) in zip(axes, shown):
        for split, style in (("train", "-"), ("val", "--")):
            values = [scale * h[f"{split}_{metric}"] for h in history]
            ax.plot(epochs, values, style, label="validation" if split == "val" else split)
        ax.axvline(best_epoch, color="grey", lw=0.8, ls=":", label=f"best epoch {best_epoch}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.88, wspace=0.25)
    fig.savefig(path, dpi=110)
    return path


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    return np.bincount(labels * n_classes + predicted, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def confusion_figure(matrix: np.ndarray, title: str, path: Path) -> Path:
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
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
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.1, top=0.93)
    fig.savefig(path, dpi=110)
    return path
