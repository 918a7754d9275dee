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


def figure(width: float, height: float, columns: int = 1, bottom: float = 0.55) -> Figure:
    """A figure with room for its labels: margins in inches (0.85 on the left for an axis
    label beside tick labels such as 2×10⁻¹), so no label is cut off whatever its width. Fixed
    margins, not a layout engine: computing the layout costs more than drawing the figure."""
    fig = Figure(figsize=(width, height))
    fig.subplots(1, columns)
    fig.subplots_adjust(
        left=0.85 / width,
        right=1 - 0.2 / width,
        bottom=bottom / height,
        top=1 - 0.45 / height,
        wspace=0.3,
    )
    return fig


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path


def curves(histories: list[pd.DataFrame], title: str, path: Path) -> Path:
    """Loss and accuracy per epoch, train and validation, mean ± sd over seeds."""
    fig = figure(10, 3.8, columns=2)
    loss, accuracy = fig.axes
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
