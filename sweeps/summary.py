"""A finished study as a pandas table (CSV, Markdown) and Optuna's matplotlib figures."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import optuna
import pandas as pd

FIGURES = {
    "optimization_history": optuna.visualization.matplotlib.plot_optimization_history,
    "param_importances": optuna.visualization.matplotlib.plot_param_importances,
    "parallel_coordinate": optuna.visualization.matplotlib.plot_parallel_coordinate,
    "intermediate_values": optuna.visualization.matplotlib.plot_intermediate_values,
}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: parameters, state, objective, validation and test metrics, duration."""
    df = study.trials_dataframe(
        attrs=("number", "state", "value", "params", "user_attrs", "duration")
    )
    if df.empty:
        return df
    df = df.rename(columns=lambda c: c.removeprefix("params_").removeprefix("user_attrs_"))
    df["seconds"] = df.pop("duration").dt.total_seconds().round(2)
    df = df.rename(columns={"value": "objective"})
    return df


def best_by(table: pd.DataFrame, column: str, direction: str) -> pd.DataFrame:
    """The best complete trial for each value of ``column`` (e.g. each activation)."""
    done = table[table["state"] == "COMPLETE"]
    if done.empty or column not in done:
        return done
    order = done.sort_values("objective", ascending=direction == "minimize")
    return order.groupby(column, dropna=False).head(1).sort_values(column)


def write(study: optuna.Study, folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """Write ``trials.csv``, ``trials.md`` and the figures; return the table and what was skipped
    (a figure needs enough finished trials, e.g. importances need two complete ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = trials_table(study)
    table.to_csv(folder / "trials.csv", index=False)
    (folder / "trials.md").write_text(table.to_markdown(index=False, floatfmt=".4g"))
    skipped = []
    for name, plot in FIGURES.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks these plots experimental
                ax = plot(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
            fig.set_size_inches(9, 5)
            fig.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(fig)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            skipped.append(f"{name}: {err}")
    return table, skipped
