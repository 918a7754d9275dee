"""Everything the report's sections read, gathered in the order the work allows.

1. the gradient check; 2. the experiments over seeds (reused or trained); 3. for each
experiment outside the seed spread, the forensic search and its best three over seeds; 4. the
tuning study and its winners over seeds; 5. the joint test of one implementation for every
row. Every training anywhere is reused when a FINISHED run
of the same computation exists, so a second report trains nothing.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import gradcheck
from pipeline.tracking import store
from pipeline.tracking.runs import end_status, find_finished
from pipeline.tracking.ui import experiment_url
from sweeps import forensics, jobs, joint, tuning
from sweeps import study as st
from sweeps.original import NO_VERDICT, ROWS, WITHIN, prediction_halfwidth, verdict
from sweeps.report.document import Link
from sweeps.report.plan import Plan

log = logging.getLogger(__name__)


@dataclass
class Context:
    plan: Plan
    figures: Path  # where sections draw (inside the new report's folder)
    gradcheck: pd.DataFrame
    gradcheck_run_id: str | None
    runs: pd.DataFrame  # one row per (preset, seed): run id and test metrics
    histories: dict[jobs.Key, pd.DataFrame]
    weights: dict[jobs.Key, np.ndarray]
    comparison: pd.DataFrame  # one row per experiment: the original against ours
    reused: int
    errors: dict[jobs.Key, str] = field(default_factory=dict)
    findings: list[forensics.Finding] = field(default_factory=list)
    tuning: tuning.Tuning | None = None
    joint: joint.Joint | None = None

    @property
    def seeds(self) -> list[int]:
        return list(range(self.plan.r.seeds))

    @functools.cached_property
    def ui(self) -> str:
        """The MLflow UI's page of this experiment: the tracking server's own, or ``make ui``'s
        (http://127.0.0.1:5000 by default)."""
        cfg = self.plan.first.tracking
        return experiment_url(cfg.uri, store.open_experiment(cfg.uri, cfg.experiment)[1])

    def link(self, run_id: str) -> Link:
        """A run id as a link to its page in the MLflow UI, shown by its first 8 characters."""
        return Link(run_id[:8], f"{self.ui}/runs/{run_id}")

    def links(self, run_ids: str) -> tuple[Link, ...]:
        """Space-separated run ids (a group's seeds) as links."""
        return tuple(self.link(r) for r in run_ids.split())


def compare(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment: the original's numbers beside ours and the verdict (the rule is
    ``original.verdict``: the original inside the 95% prediction interval of our seeds)."""
    rows = []
    for preset, row in ROWS.iterrows():
        ours = runs[runs["group"] == preset].sort_values("seed")
        if ours.empty:
            continue
        acc = ours["test_accuracy"].to_numpy() * 100
        half = prediction_halfwidth(float(acc.std(ddof=1)), len(acc)) if len(acc) > 1 else np.nan
        rows.append(
            {
                "preset": preset,
                "experiment": row["section"],
                "original acc %": row["accuracy"] * 100,
                "ours acc % (mean)": round(acc.mean(), 2),
                "ours acc % (sd)": round(acc.std(ddof=1), 2) if len(acc) > 1 else np.nan,
                "ours acc % (seeds)": " / ".join(f"{a:.2f}" for a in acc),
                "diff (points)": round(acc.mean() - row["accuracy"] * 100, 2),
                "95% interval of one run": (
                    f"{acc.mean() - half:.2f} to {acc.mean() + half:.2f}"
                    if not np.isnan(half)
                    else "-"
                ),
                "verdict": verdict(acc, row["accuracy"] * 100),
                "original loss": row["loss"],
                "ours loss": round(ours["test_loss"].mean(), 4),
                "original stop epoch": row["stop_epoch"],
                "ours stop epochs": " / ".join(str(int(e)) for e in ours["stopped_epoch"]),
            }
        )
    return pd.DataFrame(rows)


def gather(plan: Plan, figures: Path, parent: str | None) -> Context:
    """Do (or reuse) all the work; ``parent`` is the run new group runs hang under, if any."""
    start = time.monotonic()

    def done(what: str) -> None:
        log.info(f"== {what}: {time.monotonic() - start:.0f}s since the start")

    grad = pd.DataFrame(gradcheck.recorded(plan.gradcheck)[0])
    cfg = plan.gradcheck
    checked = find_finished(cfg.tracking.uri, cfg.tracking.experiment, gradcheck.identity_tags(cfg))
    run_ids, errors, reused = jobs.ensure(plan.experiments, plan.workers, plan.r.force, parent)
    runs, histories, weights = jobs.collect(run_ids, plan.first.tracking.uri, weights=True)
    ctx = Context(
        plan, figures, grad, checked, runs, histories, weights, compare(runs), reused, errors
    )
    done("the experiments")
    outside = ctx.comparison[~ctx.comparison["verdict"].isin([WITHIN, NO_VERDICT])]
    rows = [p for p in outside["preset"] if p in plan.forensics]
    searched = [plan.forensics[p] for p in rows]
    tuned = [plan.tuning] if plan.tuning is not None else []
    # every study at once: the workers go from one to the next without waiting
    ran = st.run_studies([*searched, *tuned], plan.workers, parent)
    done("the studies (forensic searches and tuning)")
    trials = {r.s.name: forensics.trials_table(r.s, r.studies[0][1]) for r in ran[: len(rows)]}
    todo: dict[jobs.Key, jobs.Job] = {}
    for r in ran:  # then every best over seeds at once, longest first
        if r.s.objective == "distance":
            todo |= forensics.rerun_jobs(r.s, trials[r.s.name], plan.r.seeds, r.parent_run_id)
        else:
            todo |= tuning.winner_jobs(r, plan.r.seeds)
    # and, in the same pool, the joint test's runs at seed 0 (one implementation for every
    # row), each searched row at the length of its closest trial; with one seed, no joint test
    rules = {p: joint.length_rule(r.s, trials[r.s.name]) for p, r in zip(rows, ran)}
    joint_rows = joint.rows_of(plan.base, plan.r.presets, rules) if len(ctx.seeds) > 1 else []
    joint_parent = joint.parent_run(joint_rows) if joint_rows else None
    try:
        if joint_parent:
            todo |= joint.screening_jobs(joint_rows, joint_parent.run_id)
        rerun_ids, rerun_errors, _ = jobs.ensure(todo, plan.workers, plan.r.force)
    except BaseException as err:
        if joint_parent:
            joint_parent.end(end_status(err))
        raise
    ctx.errors |= rerun_errors
    uri = plan.first.tracking.uri
    reruns = jobs.collect(rerun_ids, uri, histories=False)[0] if rerun_ids else runs.iloc[:0]
    done("the best over seeds")
    for preset, r in zip(rows, ran):
        ctx.findings.append(forensics.finding(preset, r, trials[r.s.name], reruns))
    if tuned:
        ctx.tuning = tuning.summarize(ran[-1], reruns, runs)
    if joint_parent:  # each searched row now at the length of its best over seeds
        rules = {
            f.preset: joint.length_rule(f.s, f.trials, f.ranking.iloc[0]["choices"])
            for f in ctx.findings
        }
        joint_rows = joint.rows_of(plan.base, plan.r.presets, rules)
        ctx.joint, failed = joint.test(
            joint_rows, joint_parent, plan.r.seeds, plan.workers, plan.r.force
        )
        ctx.errors |= failed
        done("the joint test of one implementation for every row")
    return ctx
