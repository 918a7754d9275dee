"""One trial: compose its config, train it (or reuse a finished run of the same computation),
report every epoch to Optuna for pruning, and return its value.

The value is the best epoch's validation metric, or, for a forensic study, the distance of the
run's test numbers to the original's row (``original.Target``): there the point is to find
which implementation the original used, not to select a model.
"""

from __future__ import annotations

import contextlib
import math
from itertools import pairwise
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from pipeline import train
from pipeline.config import TrainConfig
from pipeline.fit import Diverged, Pruned
from sweeps import space, storage
from sweeps.original import Target
from sweeps.settings import Part, Settings, compose_trial


class DistancePruner(optuna.pruners.BasePruner):
    """Drop a forensic trial that cannot, or will hardly, come closer than the best finished one:
    at once when its lower bound (it stops too late) already exceeds the best distance; from
    epoch ``warmup`` on, when its validation numbers are more than 2x + 1 farther than that, or
    farther than that and still moving away (the last three epochs each farther), or farther
    than the median of the earlier trials at the same epoch (Optuna's median rule)."""

    def __init__(self, target: Target, warmup: int = 5) -> None:
        self.target, self.warmup = target, warmup
        self.median = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        try:
            best = study.best_value
        except ValueError:  # nothing finished yet to compare with
            return False
        if step is None:
            return False
        if self.target.lower_bound(step) > best:
            return True
        if step < self.warmup:
            return False
        now = trial.intermediate_values[step]
        recent = [trial.intermediate_values.get(step - k) for k in (3, 2, 1, 0)]
        receding = None not in recent and all(a < b for a, b in pairwise(recent))
        return now > 2 * best + 1 or (now > best and receding) or self.median.prune(study, trial)


def trial_name(s: Settings, part: Part, number: int, values: dict[str, Any]) -> str:
    """``lr_activation #3 relu lr=0.12``: short enough for the runs table."""
    marks = [train.mark(k, v) for k, v in {**part.fixed, **values}.items()]
    return " ".join([f"{s.sweep} #{number}", *marks])


class Objective:
    """Returns the trial's value, raises ``TrialPruned``, or returns None for a trial that
    failed for a reason (a diverging learning rate): a result, not a crash."""

    def __init__(self, s: Settings, part: Part, parent_run_id: str | None) -> None:
        self.s, self.part = s, part
        self.sampled = s.space()[1]
        self.parent_run_id = parent_run_id
        self.outbox: str | None = None

    def step_value(self, epoch: int, metrics: dict[str, float]) -> float:
        if self.s.objective == "distance":
            return self.s.target.now(epoch, metrics["val_accuracy"], metrics["val_loss"])
        return metrics[self.s.objective]

    def __call__(self, trial: optuna.Trial) -> float | None:
        s = self.s
        values = space.sample(trial, self.sampled, self.part.fixed)
        cfg = compose_trial(s, {**self.part.fixed, **values})
        cfg.tracking.run_name = trial_name(s, self.part, trial.number, values)
        summary = self._reuse(cfg, trial) if cfg.tracking.enabled else None
        if summary is None:
            summary = self._train(cfg, trial)
            if summary is None:
                return None
        for key, value in summary.items():
            trial.set_user_attr(key, value)
        if summary["pruned"]:
            raise optuna.TrialPruned(f"pruned at epoch {summary['stopped_epoch']}")
        if s.objective == "distance":
            return s.target.distance(
                summary["test_accuracy"], summary["test_loss"], summary["stopped_epoch"]
            )
        return summary[s.objective]

    def _train(self, cfg: TrainConfig, trial: optuna.Trial) -> dict[str, Any] | None:
        def report(epoch: int, metrics: dict[str, float]) -> None:
            trial.report(self.step_value(epoch, metrics), epoch)
            if trial.should_prune():
                raise Pruned(f"pruned at epoch {epoch}")

        tags = {
            "kind": "trial",
            "optuna.study": self.part.name,
            "optuna.trial": str(trial.number),
            **{f"group.{k}": str(v) for k, v in self.part.fixed.items()},
        }
        try:
            result = train.run(
                cfg,
                [report],
                tags,
                self.parent_run_id,
                on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
            )
        except Diverged as err:
            trial.set_user_attr("failed_reason", str(err))
            return None
        self.outbox = result.outbox
        best = result.history[result.best_epoch - 1]
        return {
            "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss,
            "best_epoch": result.best_epoch,
            "stopped_epoch": result.stopped_epoch,
            "val_accuracy": best["val_accuracy"],
            "val_loss": best["val_loss"],
            "train_seconds": result.seconds,
            "learned": result.learned,
            "pruned": result.pruned,
        }

    def _reuse(self, cfg: TrainConfig, trial: optuna.Trial) -> dict[str, Any] | None:
        """The summary of a FINISHED run of the very same computation, if there is one (its
        epochs are reported to the trial, so the study's figures show them)."""
        from pipeline.tracking import store
        from pipeline.tracking.provenance import identity
        from pipeline.tracking.runs import find_finished, run_artifact

        run_id = find_finished(cfg.tracking.uri, cfg.tracking.experiment, identity(cfg))
        if run_id is None:
            return None
        run = store.client(cfg.tracking.uri).get_run(run_id)
        history = pd.read_csv(run_artifact(run_id, "history.csv", cfg.tracking.uri))
        for row in history.to_dict("records"):
            trial.report(self.step_value(int(row["epoch"]), row), int(row["epoch"]))
        m = run.data.metrics
        best = history.iloc[int(m["best_epoch"]) - 1]
        trial.set_user_attr("mlflow_run_id", run_id)
        trial.set_user_attr("reused", True)
        return {
            "test_accuracy": m["test_accuracy"],
            "test_loss": m["test_loss"],
            "best_epoch": int(m["best_epoch"]),
            "stopped_epoch": int(m["stopped_epoch"]),
            "val_accuracy": float(best["val_accuracy"]),
            "val_loss": float(best["val_loss"]),
            "train_seconds": m.get("train_seconds", math.nan),
            "learned": run.data.tags.get("learned", "true") == "true",
            "pruned": False,
        }


def run_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective) -> FrozenTrial:
    """Run one trial and tell the study its outcome; an interrupted one is failed without a
    reason (so it runs again) before the interrupt goes on."""
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        return study.tell(trial, state=TrialState.PRUNED)
    except BaseException as err:
        with contextlib.suppress(Exception):  # the interrupt may have cut a write short; if
            # this fails too, the trial is failed as stale by the next command
            trial.set_user_attr("interrupted", f"{type(err).__name__}: {err}"[:500])
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    finally:
        storage.disown(trial)
    if value is None:
        return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, value)
