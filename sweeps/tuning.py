"""What tuning gives: each experiment's hand-picked learning rate (and lambda) against the best
a fair search finds, both over seeds.

The search is one study per experiment (the ``tune`` space groups by ``experiment``), each run
until ``min_complete`` trials are complete (at most ``trials``), so every activation and every
regularizer gets the same guaranteed budget, whatever the sampler prefers. A trial that never
learned (near chance) is counted but is never a group's best. Each group's best is retrained
over the report's seeds (seed 0 is the trial itself, reused) and set against the hand-picked
runs with Welch's t-test (``original.welch``).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from pipeline import cli, train
from pipeline.config import CONF_DIR, ConfigError
from pipeline.tracking.provenance import code_version
from sweeps import jobs, settings, space, summary
from sweeps import study as st
from sweeps.best import best_trial, learned
from sweeps.original import welch


@dataclass
class TuningSchema:
    """``report.tuning.*`` (``conf/report.yaml``)."""

    sweep: str | None = "tune"  # null: no tuning
    min_complete: int = 6  # per experiment: complete trials (never-learned ones count, never win)
    trials: int = 20  # per experiment, at most
    pruner: str = "median"
    storage: str | None = None  # null: the journal beside the MLflow store (study.storage)


def options(cfg: Any) -> TuningSchema:
    try:
        o: TuningSchema = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(TuningSchema), cfg)
        )
    except OmegaConfBaseException as err:
        raise ConfigError(f"report.tuning.{err.full_key}: {str(err).splitlines()[0]}") from None
    if o.trials == 0:  # as conf/report.yaml documents: no tuning
        o.sweep = None
    elif o.min_complete < 0 or o.trials < 0 or o.min_complete > o.trials:
        raise ConfigError(
            f"report.tuning.min_complete={o.min_complete}, trials={o.trials} are invalid: "
            "expected 0 <= min_complete <= trials (trials=0 skips tuning)"
        )
    known = sorted(p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml"))
    if o.sweep is not None and o.sweep not in known:
        raise ConfigError(f"report.tuning.sweep={o.sweep!r} is invalid: expected one of {known}")
    if o.pruner not in settings.PRUNERS:
        raise ConfigError(
            f"report.tuning.pruner={o.pruner!r} is invalid: one of {settings.PRUNERS}"
        )
    return o


def study_settings(
    base: list[str], o: TuningSchema, workers: int, presets: list[str]
) -> settings.Settings | None:
    """The tuning study of the report's experiments that its space knows (None if none),
    named after everything that defines it, so another report never resumes it."""
    if o.sweep is None:
        return None
    space_cfg = train.compose([f"sweep={o.sweep}"], config_name="sweeps").sweep
    known = list(space_cfg.params.get("experiment", {}).get("choices", []))
    chosen = [p for p in known if p in presets]
    if not chosen:
        return None
    key = hashlib.sha256(" ".join([*base, *chosen, code_version()]).encode()).hexdigest()[:8]
    raw = train.compose(
        [
            f"sweep={o.sweep}",
            f"sweep.params.experiment.choices=[{','.join(chosen)}]",
            f"n_trials={o.trials}",
            f"min_complete={o.min_complete}",
            f"workers={workers}",
            f"study.pruner={o.pruner}",
            f"study.name={o.sweep}-{key}",
            *([f"study.storage={o.storage}"] if o.storage else []),
            *base,
        ],
        config_name="sweeps",
    )
    s = settings.settings_from(raw, base)
    if s.groups != ("experiment",):
        raise ConfigError(f"sweep {s.sweep!r} must group by experiment (groups: [experiment])")
    return s


@dataclass
class Tuning:
    s: settings.Settings
    trials: pd.DataFrame  # every trial of every group
    best: pd.DataFrame  # per experiment: its best trial and both sides over seeds
    importances: pd.DataFrame  # what matters, across experiments and within the penalised ones
    parent_run_id: str | None


def tune(s: settings.Settings, hand_picked: pd.DataFrame, seeds: int, parent: str | None) -> Tuning:
    """Run (or resume) the study, then retrain each group's best over ``seeds`` seeds (the
    report runs these steps beside the forensic searches: ``context.gather``)."""
    [ran] = st.run_studies([s], s.workers, parent)
    run_ids, errors, _ = jobs.ensure(winner_jobs(ran, seeds), s.workers)
    if errors:
        raise cli.WorkFailed("; ".join(f"{k[0]} seed {k[1]}: {e}" for k, e in errors.items()))
    uri = train.config(s.base_overrides).tracking.uri
    runs = (
        jobs.collect(run_ids, uri, histories=False)[0]
        if run_ids
        else pd.DataFrame(columns=["group"])
    )
    return summarize(ran, runs, hand_picked)


TUNED = ("optimizer.lr", "regularizer.lam")


def winners(ran: st.Ran) -> dict[str, FrozenTrial]:
    """Each experiment's best trial that learned, as its Optuna study holds it."""
    found = {p.fixed["experiment"]: best_trial(study) for p, study in ran.studies}
    return {experiment: t for experiment, t in found.items() if t is not None}


def winner_jobs(ran: st.Ran, seeds: int) -> dict[jobs.Key, jobs.Job]:
    """Each experiment's winner over seeds (seed 0 is the trial, reused)."""
    s, todo = ran.s, {}
    for experiment, trial in winners(ran).items():
        tuned = {k: trial.params[k] for k in TUNED if k in trial.params}
        overrides = (*s.base_overrides, f"experiment={experiment}", *space.as_overrides(tuned))
        for seed in range(seeds):
            todo[f"tuned {experiment}", seed] = jobs.Job(
                (*overrides, f"trainer.seed={seed}", *jobs.NO_FIGURES),
                {"kind": "tuned-run"},
                ran.parent_run_id,
            )
    return todo


def summarize(ran: st.Ran, runs: pd.DataFrame, hand_picked: pd.DataFrame) -> Tuning:
    """Per experiment: the search's counts, its winner, and both sides over seeds, judged."""
    best = winners(ran)
    rows = []
    for part, study in ran.studies:
        experiment = part.fixed["experiment"]
        trials = study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        mine = hand_picked[hand_picked["group"] == experiment]["test_accuracy"].to_numpy() * 100
        row: dict[str, Any] = {
            "experiment": experiment,
            "trials": len(trials),
            "complete": len(complete),
            "never learned": sum(not learned(t) for t in complete),
            "hand-picked acc % (mean)": round(mine.mean(), 2) if len(mine) else np.nan,
            "hand-picked acc % (sd)": round(mine.std(ddof=1), 2) if len(mine) > 1 else np.nan,
        }
        tuned = runs[runs["group"] == f"tuned {experiment}"]
        if experiment in best and not tuned.empty:
            top = best[experiment]
            acc = tuned["test_accuracy"].to_numpy() * 100
            test = welch(acc, mine)
            row |= {
                "best trial": top.number,
                f"best {ran.s.objective}": top.value,
                "tuned lr": top.params["optimizer.lr"],
                "tuned lambda": top.params.get("regularizer.lam", np.nan),
                "tuned acc % (mean)": round(acc.mean(), 2),
                "tuned acc % (sd)": round(acc.std(ddof=1), 2) if len(acc) > 1 else np.nan,
                "gain (points)": round(test.diff, 2),
                "p (Welch)": test.p,
                "verdict": test.verdict,
                "best trial run id": top.user_attrs.get("mlflow_run_id", ""),
                "tuned run ids": " ".join(tuned["run_id"]),
            }
        rows.append(row)
    trials = summary.trials_table(ran.studies)
    return Tuning(ran.s, trials, pd.DataFrame(rows), importances(ran.studies), ran.parent_run_id)


def importances(studies: list) -> pd.DataFrame:
    """Optuna's parameter importances by fANOVA (seeded: the same trials give the same
    numbers) across experiments (the experiment itself against the learning rate), and within
    each penalised experiment (lr against lambda)."""
    rows = []
    scopes = [("all experiments", summary.combined(studies))]  # lambda is not in all: left out
    scopes += [
        (p.fixed["experiment"], study)
        for p, study in studies
        if any("regularizer.lam" in t.params for t in study.get_trials(deepcopy=False))
    ]
    for scope, study in scopes:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < 2:
            continue
        shared = set.intersection(*(set(t.params) for t in done))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=0), params=sorted(shared)
            )
        rows += [
            {"scope": scope, "parameter": k, "importance": round(v, 3)} for k, v in found.items()
        ]
    return pd.DataFrame(rows)
