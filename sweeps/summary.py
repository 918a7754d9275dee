"""A sweep as a pandas table (CSV, Markdown) and Optuna's matplotlib figures.

A grouped sweep lives in one study per group; ``combined`` puts their trials back into one
in-memory study with the group values as parameters, so the history, the importances (does
the activation matter more than the learning rate?) and the other figures see the whole sweep.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, create_trial

from sweeps.best import objective
from sweeps.settings import Part

FIGURES = {
    "optimization_history": optuna.visualization.matplotlib.plot_optimization_history,
    "param_importances": optuna.visualization.matplotlib.plot_param_importances,
    "parallel_coordinate": optuna.visualization.matplotlib.plot_parallel_coordinate,
    "intermediate_values": optuna.visualization.matplotlib.plot_intermediate_values,
}


def combined(studies: list[tuple[Part, optuna.Study]]) -> optuna.Study:
    """One study holding every part's trials, the group values added as parameters."""
    if len(studies) == 1:
        return studies[0][1]
    first = studies[0][1]
    out = optuna.create_study(direction=first.direction, study_name=first.study_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        out.set_metric_names(first.metric_names or ["objective"])
    choices = {k: sorted({str(p.fixed[k]) for p, _ in studies}) for k in studies[0][0].fixed}
    for part, study in studies:
        for t in study.get_trials(deepcopy=False):
            if not t.state.is_finished():  # running, or waiting in a grid
                continue
            fixed = {k: str(v) for k, v in part.fixed.items()}
            out.add_trial(
                create_trial(
                    state=t.state,
                    value=objective(t),
                    params={**fixed, **t.params},
                    distributions={
                        **{k: CategoricalDistribution(choices[k]) for k in fixed},
                        **t.distributions,
                    },
                    user_attrs={**t.user_attrs, "study": part.name, "number": t.number},
                    intermediate_values=t.intermediate_values,
                )
            )
    return out


def _seconds(trial: FrozenTrial) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return float("nan")  # still running, or waiting
    return round((trial.datetime_complete - trial.datetime_start).total_seconds(), 2)


def trials_table(studies: list[tuple[Part, optuna.Study]]) -> pd.DataFrame:
    """One row per trial, read from the trials themselves: group, state, objective,
    parameters, what the trial recorded (validation and test metrics, whether it learned, its
    MLflow run), duration."""
    rows = [
        {
            "number": t.number,
            **{key: str(value) for key, value in part.fixed.items()},
            "state": t.state.name,
            "objective": objective(t),
            **t.params,
            **t.user_attrs,
            "seconds": _seconds(t),
        }
        for part, study in studies
        for t in study.get_trials(deepcopy=False)
    ]
    table = pd.DataFrame(rows)
    if not table.empty:
        table["objective"] = table["objective"].astype(float)  # None is NaN, never an object
    return table


def write(studies: list[tuple[Part, optuna.Study]], folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """Write ``trials.csv``, ``trials.md`` and the figures; return the table and what was skipped
    (a figure needs enough finished trials, e.g. importances need two complete ones)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = trials_table(studies)
    table.to_csv(folder / "trials.csv", index=False)
    (folder / "trials.md").write_text(table.to_markdown(index=False, floatfmt=".4g"))
    whole = combined(studies)
    skipped = []
    for name, plot in FIGURES.items():
        try:
            # Optuna's plots switch matplotlib to its ggplot style for good: kept to them here,
            # so figures drawn later in the process (the report's) look the same either way
            with warnings.catch_warnings(), matplotlib.rc_context():
                warnings.simplefilter("ignore")  # experimental plots; layouts that do not fit
                ax = plot(whole)
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
                fig.set_size_inches(9, 5)
                fig.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
            plt.close(fig)
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            skipped.append(f"{name}: {err}")
    return table, skipped
