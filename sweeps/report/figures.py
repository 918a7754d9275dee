"""What every figure of the report shares: curves as the mean over seeds with a band, accuracy
in percent (as in every table), whole-number epochs, and nothing clipped at the edges."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def band(ax: Axes, histories: list[pd.DataFrame], column: str, **style: object) -> None:
    """The mean over seeds of ``column`` per epoch, and a band of one sd around it, over the
    epochs each seed reached (a seed that stopped early no longer counts)."""
    longest = max(len(h) for h in histories)
    values = np.full((len(histories), longest), np.nan)
    for i, h in enumerate(histories):
        values[i, : len(h)] = h[column].to_numpy()
    scale = 100 if "accuracy" in column else 1
    epochs = np.arange(1, longest + 1)
    mean = np.nanmean(values, axis=0) * scale
    with warnings.catch_warnings():  # an epoch only one seed reached has no spread
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nan_to_num(np.nanstd(values, axis=0, ddof=1)) * scale
    (line,) = ax.plot(epochs, mean, **style)
    ax.fill_between(epochs, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)


def epochs_axis(ax: Axes) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def save(fig: Figure, path: Path) -> Path:
    """Saved with its layout fitted to its labels (titles and axis labels never cut off)."""
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def curves(histories: list[pd.DataFrame], title: str, path: Path) -> Path:
    """Loss and accuracy per epoch, train and validation, mean ± sd over seeds."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    loss, accuracy = fig.subplots(1, 2)
    for split, style in (("train", "-"), ("val", "--")):
        name = "validation" if split == "val" else split
        band(loss, histories, f"{split}_loss", ls=style, label=name)
        band(accuracy, histories, f"{split}_accuracy", ls=style, label=name)
    loss.set_ylabel("cross-entropy loss")
    accuracy.set_ylabel("accuracy %")
    for ax in (loss, accuracy):
        epochs_axis(ax)
        ax.legend()
    fig.suptitle(f"{title}: mean ± sd over {len(histories)} seed(s)")
    return save(fig, path)
