"""The checks of "What tuning gives": each experiment's sub-study (its counts and its best
trial, from Optuna's own trials and direction), the winners' runs over seeds against the
hand-picked ones (Welch's test from its formula), and the parameter importances."""

from __future__ import annotations

import re
import warnings

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.importance import FanovaImportanceEvaluator
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from verify.document import Section, run_ids
from verify.evidence import Evidence, label_of, preset_of
from verify.forensics import same_run
from verify.original import mean, sd, welch_p, welch_verdict
from verify.tally import NUM

OUTCOME = {
    "better": "tuning helped",
    "worse": "the hand-picked setting is better",
    "no clear difference": "no difference the seeds can tell apart",
    "too few runs": "too few runs to tell",
}


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("learned", True)
    ]
    if not done:
        return None
    sign = 1 if study.direction == StudyDirection.MINIMIZE else -1
    return min(done, key=lambda t: (sign * t.value, t.number))


def sub_studies(ev: Evidence) -> list[tuple[str, optuna.Study]]:
    """The tuning study's parts, in the order the storage holds them (the order they were
    made in, which is the order Optuna's importances saw their trials in)."""
    name, storage = ev.studies["tuning"]
    first = ev.records.study(f"{name}:experiment={preset_of(next(iter(ev.runs)))}", storage)
    names = optuna.get_all_study_names(storage=first._storage)
    parts = [n for n in names if n.startswith(f"{name}:experiment=")]
    return [(n.partition("=")[2], ev.records.study(n, storage)) for n in parts]


def tuning(ev: Evidence, s: Section) -> None:
    t = ev.tally
    if "tuning" not in ev.studies:
        t.unverified(s.title, "no tuning study in the setup section")
        return
    parts = dict(sub_studies(ev))
    derived: dict[str, dict] = {}
    for preset, study in parts.items():
        trials = study.get_trials(deepcopy=False)
        complete = [x for x in trials if x.state == TrialState.COMPLETE]
        best = best_trial(study)
        d = {
            "trials": len(trials),
            "complete": len(complete),
            "never learned": sum(not x.user_attrs.get("learned", True) for x in complete),
            "hand": ev.accuracies(preset),
            "best": best,
        }
        derived[label_of(preset)] = d
    ev.derived["tuning"] = derived
    table = s.table("Per experiment")
    for row in table.rows if table else []:
        label, where = row["experiment"], f"{s.title}: {row['experiment']}"
        d = derived.get(label)
        if d is None:
            t.word(where, label, "an experiment of the tuning study")
            continue
        for key in ("trials", "complete", "never learned"):
            t.number(f"{where} {key}", row[key], d[key])
        t.number(f"{where} hand-picked mean", row["hand-picked acc % (mean)"], mean(d["hand"]))
        t.number(f"{where} hand-picked sd", row["hand-picked acc % (sd)"], sd(d["hand"]))
        best = d["best"]
        if best is None:
            t.word(f"{where} best trial", row.get("best trial", "-"), "-")
            continue
        objective = next(
            c for c in row if c.startswith("best ") and c != "best trial" and c != "best trial run"
        )
        t.number(f"{where} best trial", row["best trial"], best.number)
        t.number(f"{where} {objective}", row[objective], best.value)
        t.number(f"{where} lr", row["tuned lr"], best.params["optimizer.lr"])
        t.number(f"{where} lambda", row["tuned lambda"], best.params.get("regularizer.lam"))
        trial_run = run_ids(row["best trial run"])
        t.word(
            f"{where} best trial run",
            " ".join(trial_run),
            best.user_attrs.get("mlflow_run_id", "-"),
        )
        tuned = tuned_runs(ev, where, preset_of(label), best, row["tuned runs"])
        d["tuned"] = tuned
        t.number(f"{where} tuned mean", row["tuned acc % (mean)"], mean(tuned))
        t.number(f"{where} tuned sd", row["tuned acc % (sd)"], sd(tuned))
        t.number(f"{where} gain", row["gain (points)"], mean(tuned) - mean(d["hand"]))
        t.number(f"{where} p", row["p (Welch)"], welch_p(tuned, d["hand"]))
        t.word(f"{where} verdict", row["verdict"], welch_verdict(tuned, d["hand"]))
    importances(ev, s, parts)

    def intro(m: re.Match) -> None:
        run = ev.records.run(ev.links["tuning"])
        t.word(f"{s.title}: pruner", m[3], run.tags.get("optuna.pruner", "-") if run else "-")
        for label, d in derived.items():  # each part ran until the minimum, or the maximum
            reached = d["complete"] >= int(m[1]) or d["trials"] >= int(m[2])
            t.word(f"{s.title}: the budget of {label}", str(reached), "True")
        t.number(f"{s.title}: seeds", m[4], len(ev.seeds))

    def sentence(m: re.Match) -> None:
        d, where = derived.get(m["label"]), f"{s.title}: the sentence on {m['label']}"
        if d is None or d["best"] is None or "tuned" not in d:
            t.word(where, m["label"], "an experiment with a tuned winner")
            return
        best, tuned, hand = d["best"], d["tuned"], d["hand"]
        t.number(f"{where} complete", m["complete"], d["complete"])
        t.number(f"{where} trials", m["trials"], d["trials"])
        t.number(f"{where} lr", m["lr"], best.params["optimizer.lr"])
        t.number(f"{where} lambda", m["lam"] or "-", best.params.get("regularizer.lam"))
        t.number(f"{where} tuned mean", m["tmean"], mean(tuned))
        t.number(f"{where} tuned sd", m["tsd"], sd(tuned))
        t.number(f"{where} hand mean", m["hmean"], mean(hand))
        t.number(f"{where} hand sd", m["hsd"], sd(hand))
        t.number(f"{where} gain", m["gain"], mean(tuned) - mean(hand))
        t.number(f"{where} p", m["p"] or "-", welch_p(tuned, hand) if len(tuned) > 1 else None)
        t.word(f"{where} outcome", m["outcome"], OUTCOME[welch_verdict(tuned, hand)])

    ev.sentences(
        s,
        [
            (
                r"Each experiment gets its own study .*trials run until (\d+) are complete \(at "
                r"most (\d+); (\w+) pruner\), .* is retrained over (\d+) seed\(s\) and set "
                r"against the hand-picked runs with Welch's t-test at the 5% level\.",
                intro,
            ),
            (
                rf"(?P<label>.+?): best of (?P<complete>\d+) complete of (?P<trials>\d+) "
                rf"trials: lr (?P<lr>{NUM})(?:, lambda (?P<lam>{NUM}))? gives "
                rf"(?P<tmean>{NUM}) ± (?P<tsd>{NUM})% against (?P<hmean>{NUM}) ± "
                rf"(?P<hsd>{NUM})% hand-picked \((?P<gain>{NUM}) points(?:, p = "
                rf"(?P<p>{NUM}))?\): (?P<outcome>.+)\.",
                sentence,
            ),
        ],
    )


def tuned_runs(ev: Evidence, where: str, preset: str, best, cell: str) -> list[float]:
    """The winner's runs over seeds: each the experiment's own run of that seed with the
    winner's learning rate (and lambda), nothing else changed."""
    runs = [ev.records.run(i) for i in run_ids(cell)]
    reference = {r.params["trainer.seed"]: r.params for r in ev.runs[preset]}
    tuned = {k: str(v) for k, v in best.params.items() if k in ("optimizer.lr", "regularizer.lam")}
    for run in runs:
        if run is None:
            ev.tally.word(f"{where} tuned run", cell, "runs of this store")
            return []
        expected = {**reference.get(run.params["trainer.seed"], {}), **tuned}
        same_run(ev, f"{where}: tuned run {run.run_id[:8]}", run.params, expected)
    seeds = sorted(int(r.params["trainer.seed"]) for r in runs)
    ev.tally.word(f"{where} tuned seeds", str(seeds), str(ev.seeds))
    return [r.accuracy for r in runs]


def importances(ev: Evidence, s: Section, parts: dict[str, optuna.Study]) -> None:
    """fANOVA (seed 0) across experiments, on one study holding every part's complete trials
    with the experiment as a parameter, and within each experiment that tunes lambda."""
    table = s.table("What matters")
    if table is None:
        return
    combined = optuna.create_study()
    choices = sorted(parts)
    for preset, study in parts.items():
        for x in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            combined.add_trial(
                create_trial(
                    value=x.value,
                    params={"experiment": preset, **x.params},
                    distributions={
                        "experiment": CategoricalDistribution(choices),
                        **x.distributions,
                    },
                )
            )
    scopes = {"all experiments": (combined, ["experiment", "optimizer.lr"])}
    for preset, study in parts.items():
        if any("regularizer.lam" in x.params for x in study.get_trials(deepcopy=False)):
            scopes[preset] = (study, ["optimizer.lr", "regularizer.lam"])
    derived = {}
    for scope, (study, params) in scopes.items():
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 2:
            continue  # fANOVA needs two complete trials to say anything
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=0), params=params
            )
        derived |= {(scope, k): v for k, v in found.items()}
    for row in table.rows:
        key = (row["scope"], row["parameter"])
        ev.tally.number(
            f"{s.title}: importance of {key[1]} in {key[0]}", row["importance"], derived.get(key)
        )
    ev.tally.number(f"{s.title}: importances", str(len(table.rows)), len(derived))
