"""The checks of the sections that rest on the report's own runs: the setup (which anchors
them), the experiments over seeds, activations, sparsity and the gradient check."""

from __future__ import annotations

import re

import numpy as np

from verify.document import Section, run_ids
from verify.evidence import Evidence
from verify.original import NEAR_ZERO, ROWS, interval, mean, sd, verdict
from verify.tally import NUM, NUMBER


def setup(ev: Evidence, s: Section) -> None:
    """The run ids table anchors every run the report's numbers rest on: each must exist,
    be FINISHED, and be the preset and seed its cell says."""
    t, ids = ev.tally, s.table("MLflow run ids of the experiments")
    if ids is None:
        t.unverified(s.title, "no table of the experiments' run ids")
        return
    seeds = [int(c.removeprefix("seed ")) for c in ids.columns if c.startswith("seed ")]
    ev.seeds = seeds
    for row in ids.rows:
        preset, runs = row["experiment"], []
        for seed in seeds:
            found = run_ids(row[f"seed {seed}"])
            run = ev.records.run(found[0]) if found else None
            where = f"{s.title}: {preset} seed {seed}"
            if run is None:
                t.word(where, row[f"seed {seed}"], "a run of this store")
                continue
            t.word(f"{where} status", run.status, "FINISHED")
            t.word(f"{where} preset", preset, run.tags.get("preset", "-"))
            t.number(f"{where} seed", str(seed), float(run.params.get("trainer.seed", "nan")))
            runs.append(run)
        ev.runs[preset] = runs
    studies = s.table("Studies and checks")
    for row in studies.rows if studies else []:
        found = run_ids(row["MLflow run"])
        run = ev.records.run(found[0]) if found else None
        if run is None:
            t.word(f"{s.title}: {row['what']}", row["MLflow run"], "a run of this store")
            continue
        ev.links[row["what"]] = run.run_id
        if row["study"] != "-":
            t.word(f"{s.title}: {row['what']} study", row["study"], run.tags.get("optuna.study"))
            ev.studies[row["what"]] = (row["study"], run.tags.get("optuna.storage", ""))
    anchors = [r for runs in ev.runs.values() for r in runs]
    ev.sentences(
        s,
        [
            (
                r"Generated .* core code version (\w+), .*",
                lambda m: _same(ev, "code version", m[1], anchors, "code_version"),
            ),
            (
                r"Data: (\S+) \((.+)\), digest (\w+); (\d+)% of the training images for "
                r"validation \(split seed (\d+)\), normalisation (\S+), (\w+)\.",
                lambda m: _data(ev, m, anchors),
            ),
            (
                r"Seeds ([\d, ]+) for each experiment at the original's hyperparameters; .*",
                lambda m: _seeds(ev, m),
            ),
            (r"Overrides on top of the presets: (.*)\.", lambda m: _overrides(ev, m[1], anchors)),
            (r"Every number comes from an MLflow run in experiment .*", lambda m: None),
            (
                r"An independent verifier .* re-derived (\d+) numbers .*: (\d+) disagree\.",
                lambda m: ev.derived.setdefault("count line", m),
            ),
        ],
    )


def _same(ev: Evidence, what: str, shown: str, runs: list, tag: str) -> None:
    for run in runs:
        ev.tally.word(f"Setup: {what} of {run.run_id[:8]}", shown, run.tags.get(tag, "-"))


def _data(ev: Evidence, m: re.Match, runs: list) -> None:
    for run in runs:
        where, p = f"Setup: data of {run.run_id[:8]}", run.params
        ev.tally.word(f"{where} name", m[1], p.get("data.name", "-"))
        ev.tally.word(f"{where} digest", m[3], run.tags.get("data.digest", "-")[: len(m[3])])
        ev.tally.number(f"{where} validation %", m[4], 100 * float(p["data.val_fraction"]))
        ev.tally.number(f"{where} split seed", m[5], float(p["data.split_seed"]))
        ev.tally.word(f"{where} normalisation", m[6], p.get("data.normalize", "-"))
        ev.tally.word(f"{where} dtype", m[7], p.get("trainer.dtype", "-"))


def _seeds(ev: Evidence, m: re.Match) -> None:
    ev.tally.numbers("Setup: seeds", m[1], [float(s) for s in ev.seeds], sep=",")


def _overrides(ev: Evidence, text: str, runs: list) -> None:
    """Each training ``key=value`` the report says it applied is in every anchored run's
    parameters, and a tracking store or experiment is the one these records are read from.
    (Display settings, such as ``trainer.progress``, leave no record to check.)"""
    if text == "none":
        return
    for item in text.split():
        key, _, value = item.partition("=")
        if key == "tracking.uri" and "***" not in value:
            ev.tally.word("Setup: override tracking.uri", value, ev.records.uri)
        elif key == "tracking.experiment":
            ev.tally.word("Setup: override tracking.experiment", value, ev.records.experiment)
        for run in runs:
            if key in run.params:
                where = f"Setup: override {key} in {run.run_id[:8]}"
                if NUMBER.fullmatch(value) and NUMBER.fullmatch(run.params[key]):
                    ev.tally.number(where, value, float(run.params[key]))  # 1e4 is 10000.0
                else:
                    ev.tally.word(where, value, run.params[key])


def experiments(ev: Evidence, s: Section) -> None:
    t = ev.tally
    table = s.table("The original against ours")
    derived: dict[str, dict] = {}
    for label, (preset, acc, loss, stop) in ROWS.items():
        if preset not in ev.runs:
            continue
        runs, accs = ev.runs[preset], ev.accuracies(preset)
        low, high = interval(accs) if len(accs) > 1 else (np.nan, np.nan)
        derived[label] = {
            "original acc %": acc,
            "ours acc % (mean)": mean(accs),
            "ours acc % (sd)": sd(accs),
            "ours acc % (seeds)": accs,
            "diff (points)": mean(accs) - acc,
            "low": low,
            "high": high,
            "verdict": verdict(accs, acc),
            "original loss": loss,
            "ours loss": mean([r.loss for r in runs]),
            "original stop epoch": stop,
            "ours stop epochs": [r.stop for r in runs],
        }
    ev.derived["comparison"] = derived
    if table is None:
        t.unverified(s.title, "no comparison table")
    for row in table.rows if table else []:
        d, where = derived.get(row["experiment"]), f"{s.title}: {row['experiment']}"
        if d is None:
            t.word(where, row["experiment"], "one of the original's rows with runs")
            continue
        for key in (
            "original acc %",
            "ours acc % (mean)",
            "ours acc % (sd)",
            "diff (points)",
            "original loss",
            "ours loss",
            "original stop epoch",
        ):
            t.number(f"{where} {key}", row[key], d[key])
        t.numbers(f"{where} seeds", row["ours acc % (seeds)"], d["ours acc % (seeds)"])
        t.numbers(f"{where} stops", row["ours stop epochs"], d["ours stop epochs"])
        t.numbers(
            f"{where} interval", row["95% interval of one run"], [d["low"], d["high"]], sep=" to "
        )
        t.word(f"{where} verdict", row["verdict"], d["verdict"])

    def sentence(m: re.Match) -> None:
        d, where = derived.get(m["label"]), f"{s.title}: the sentence on {m['label']}"
        if d is None:
            t.word(where, m["label"], "one of the original's rows with runs")
            return
        t.number(f"{where} original", m["orig"], d["original acc %"])
        t.number(f"{where} mean", m["mean"], d["ours acc % (mean)"])
        t.number(f"{where} sd", m["sd"] or "-", d["ours acc % (sd)"])
        t.number(f"{where} diff", m["diff"], d["diff (points)"])
        t.word(f"{where} verdict", m["verdict"] or "no verdict", d["verdict"])
        t.number(f"{where} low", m["low"] or "-", d["low"])
        t.number(f"{where} high", m["high"] or "-", d["high"])
        t.numbers(f"{where} stops", m["stops"], d["ours stop epochs"])
        if m["stop"]:
            t.number(f"{where} original stop", m["stop"], d["original stop epoch"])

    def totals(m: re.Match) -> None:
        verdicts = [d["verdict"] for d in derived.values()]
        t.number(f"{s.title}: within", m[1], verdicts.count("within the seed spread"))
        t.number(f"{s.title}: rows", m[2], len(verdicts))
        t.number(f"{s.title}: better", m[3], verdicts.count("better"))
        t.number(f"{s.title}: worse", m[4], verdicts.count("worse"))

    ev.sentences(
        s,
        [
            (
                r"With one seed there is no spread to judge a difference by, so no verdict is "
                r"given; run with report\.seeds=3 or more for one\.",
                lambda m: t.number(f"{s.title}: one seed", "1", len(ev.seeds)),
            ),
            (
                (
                    r"The original's accuracy is one training run, .*t\(0\.975, n-1\) · sd · "
                    r"sqrt\(1 \+ 1/n\) over our n seeds; .*"
                ),
                lambda m: None,
            ),
            (
                rf"(?P<label>.+?): the original (?P<orig>{NUM})%, ours (?P<mean>{NUM})"
                rf"(?: ± (?P<sd>{NUM}))?% \((?P<diff>{NUM}) points\)(?:: (?P<verdict>[a-z ]+) "
                rf"\(one run of ours lies in (?P<low>{NUM}) to (?P<high>{NUM})\))?; stopped at "
                rf"epochs (?P<stops>[\d / ]+)(?: \(the original: (?P<stop>\d+)\))?\.",
                sentence,
            ),
            (
                (
                    r"In all, (\d+) of (\d+) experiments agree with the original within the "
                    r"seed spread, (\d+) (?:does|do) better and (\d+) worse\."
                ),
                totals,
            ),
        ],
    )


def activations(ev: Evidence, s: Section) -> None:
    names = {"sigmoid": "sigmoid", "tanh": "momentum", "relu": "relu"}

    def check(m: re.Match) -> None:
        shown = re.findall(rf"(\w+) reaches ({NUM})%", m[1])
        derived = sorted(
            ((mean(ev.accuracies(names[n])), n) for n in names if names[n] in ev.runs), reverse=True
        )
        ev.tally.word(
            f"{s.title}: ranking", " ".join(n for n, _ in shown), " ".join(n for _, n in derived)
        )
        for name, value in shown:
            ev.tally.number(f"{s.title}: {name}", value, mean(ev.accuracies(names[name])))
        ev.tally.number(f"{s.title}: seeds", m[2], len(ev.seeds))

    ev.sentences(
        s,
        [
            (
                (
                    r"With the original's hand-picked learning rates, (.+) on average over "
                    r"(\d+) seed\(s\); .*"
                ),
                check,
            )
        ],
    )


def sparsity(ev: Evidence, s: Section) -> None:
    t, table = ev.tally, s.table("Share of near-zero weights")
    names = {"L1": "l1", "L2": "l2", "no penalty": "momentum"}
    shares, medians = {}, {}
    for name, preset in names.items():
        if preset in ev.runs:
            weights = [ev.records.weights(r.run_id) for r in ev.runs[preset]]
            shares[name] = [100 * float(np.mean(np.abs(w) < NEAR_ZERO)) for w in weights]
            medians[name] = float(np.median(np.abs(np.concatenate(weights))))
    for row in table.rows if table else []:
        name, where = row["experiment"], f"{s.title}: {row['experiment']}"
        t.number(f"{where} seeds", row["seeds"], len(shares[name]))
        t.number(f"{where} mean", row["near-zero weights % (mean)"], mean(shares[name]))
        t.numbers(f"{where} per seed", row["near-zero weights % (seeds)"], shares[name])
        t.number(f"{where} median |w|", row["median weight magnitude"], medians[name])

    def check(m: re.Match) -> None:
        l1, l2 = shares["L1"], shares["L2"]
        t.word(f"{s.title}: answer", m[1], "Yes" if mean(l1) > mean(l2) else "No")
        t.number(f"{s.title}: L1", m[2], mean(l1))
        t.number(f"{s.title}: bound", m[3], NEAR_ZERO)
        t.number(f"{s.title}: L2", m[4], mean(l2))
        if m[5]:
            t.number(f"{s.title}: no penalty", m[5], mean(shares["no penalty"]))
        every = all(a > b for a, b in zip(l1, l2))
        t.word(
            f"{s.title}: every seed",
            m[6],
            ", in every seed." if every else "; the seeds do not all agree.",
        )

    ev.sentences(
        s,
        [
            (
                rf"(Yes|No): ({NUM})% of the L1 network's weights are below ({NUM}) in "
                rf"magnitude, against ({NUM})% with L2(?: and ({NUM})% with no penalty)?(, in "
                rf"every seed\.|; the seeds do not all agree\.)",
                check,
            )
        ],
    )


def failures(ev: Evidence, s: Section) -> None:
    """Each failed run the report lists is a FAILED run of this store, of that seed, whose
    recorded error is the one the report gives."""
    t, table = ev.tally, s.table("Failures")
    rows = table.rows if table else []
    failed = [r for r in ev.records.runs.values() if r.status == "FAILED"]
    for row in rows:
        where = f"{s.title}: {row['experiment']} seed {row['seed']}"
        same = [
            r
            for r in failed
            if r.params.get("trainer.seed") == row["seed"] and r.tags.get("error") == row["error"]
        ]
        t.word(
            where,
            "a FAILED run with this error",
            "a FAILED run with this error" if same else "none",
        )
        if (same and row["experiment"] in ev.runs) or (
            same and "report.experiment" in same[0].tags
        ):
            t.word(
                f"{where} experiment",
                row["experiment"],
                same[0].tags.get("report.experiment", row["experiment"]),
            )
    ev.sentences(
        s,
        [
            (
                r"(\d+) run\(s\) failed; the tables above use the runs that finished\.",
                lambda m: t.number(f"{s.title}: failed runs", m[1], len(rows)),
            )
        ],
    )
