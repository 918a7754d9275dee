"""Which trial is a study's best, read from Optuna's own objects.

Never from a column of ``trials_dataframe()``: once a study's metric names are set, Optuna 5
names the value column after the metric, and a column looked up by another name is all NaN
(sorting NaN keeps the first row, which then passes for the best). Here a trial's objective is
``trial.value`` and the direction is the study's.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.settings import Part


def objective(trial: FrozenTrial) -> float | None:
    """A trial's objective as Optuna holds it: ``trial.value`` once complete, whatever name
    the study gives its metric (Optuna 5's trials table names the column after it)."""
    return trial.value if trial.state == TrialState.COMPLETE else None


def learned(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get("learned", True))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The study's best complete trial that learned, by its own direction (None if none): a
    chance-level trial is never a group's best."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if learned(t) and t.value is not None
    ]
    if not done:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(done, key=lambda t: t.value)  # a tie goes to the earlier trial


def best_of(studies: list[tuple[Part, optuna.Study]]) -> tuple[Part, FrozenTrial] | None:
    """The best trial over every part of a sweep (the parts share one direction)."""
    found = [(part, t) for part, study in studies if (t := best_trial(study)) is not None]
    if not found:
        return None
    sign = 1 if studies[0][1].direction == optuna.study.StudyDirection.MINIMIZE else -1
    return min(found, key=lambda pt: sign * pt[1].value)
