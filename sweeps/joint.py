"""One implementation for every row: the original was one code base, so the choices it leaves
open were made once, for all its networks.

The per-row searches (``forensics``) explain each row on its own, and two rows may be
explained by choices no single program makes (L2 by one initialisation, L1 by another). Here
the shared choices are tested jointly: every combination of the initialisation (for every
network with a hidden layer) and, for the penalised rows, where lambda meets the batch, eq. 7's
1/2 (L1), penalised biases and what stopping watches (where stopping watches anything) is an
*implementation*; each row keeps its own length rule (a searched row the one of its best
combination, the others as they stand). Every implementation is evaluated on every row at
seed 0, the one whose largest distance is smallest is re-run over the report's seeds, and the
answer is whether it explains every row at once (every distance under 1) or which rows
conflict. Runs are reused by config hash, as everywhere: most of them exist already.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline import train
from pipeline.config import TrainConfig
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.provenance import code_version
from pipeline.tracking.runs import end_status, find_finished
from sweeps import jobs, space
from sweeps.forensics import active
from sweeps.original import ROWS, Target
from sweeps.settings import Settings

AS_IT_STANDS = "as it stands"
# choice -> its values; AS_IT_STANDS leaves a row's own value (Glorot, He for ReLU)
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.init": (AS_IT_STANDS, "normal", "uniform"),
    "regularizer.scale": ("mean", "sum"),
    "regularizer.l1_half": (False, True),
    "regularizer.penalize_bias": (False, True),
    "trainer.monitor": ("val_loss", "val_objective"),
}
LENGTH = ("trainer.stopping", "trainer.epochs")


def applies(key: str, cfg: TrainConfig) -> bool:
    """Whether a choice means anything for a row (with its length rule applied)."""
    penalised = cfg.regularizer.kind != "none" and cfg.regularizer.lam > 0
    return {
        "model.init": bool(cfg.model.hidden),
        "regularizer.scale": penalised,
        "regularizer.l1_half": penalised and cfg.regularizer.kind == "l1",
        "regularizer.penalize_bias": penalised,
        "trainer.monitor": penalised and cfg.trainer.stopping != "none",
    }[key]


@dataclass(frozen=True)
class Row:
    """One of the original's rows as the joint test trains it."""

    preset: str
    overrides: tuple[str, ...]  # the report's base, the preset and its length rule
    keys: tuple[str, ...]  # the choices that apply to it

    def choices(self, implementation: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in implementation.items() if k in self.keys and v != AS_IT_STANDS}

    def label(self, implementation: dict[str, Any]) -> str:
        marks = [train.mark(k, v) for k, v in self.choices(implementation).items()]
        return f"joint {self.preset} " + (" ".join(marks) or AS_IT_STANDS)

    def job(self, implementation: dict[str, Any], seed: int, parent: str | None) -> jobs.Job:
        values = space.as_overrides(self.choices(implementation))
        return jobs.Job(
            (*self.overrides, *values, f"trainer.seed={seed}", *jobs.EVIDENCE_ONLY),
            {"kind": "joint-run", "joint.row": self.preset},
            parent,
        )


def length_rule(s: Settings, trials: pd.DataFrame, choices: str | None = None) -> dict[str, Any]:
    """A searched row's length rule: that of its best combination over seeds (``choices``) once
    it is known, before that that of its closest trial at seed 0 (the same one, as a rule)."""
    complete = trials[trials["state"] == "complete"].sort_values("distance", kind="stable")
    best = complete[complete["choices"] == choices] if choices else complete.head(1)
    if best.empty:
        return {}
    chosen = active(s, best.iloc[0]["params"])
    return {k: chosen[k] for k in LENGTH if k in chosen}


def rows_of(base: list[str], presets: list[str], rules: dict[str, dict[str, Any]]) -> list[Row]:
    """The original's rows among ``presets``, each with its length rule (``rules``: a searched
    row's, the others as they stand)."""
    out = []
    for preset in (p for p in presets if p in ROWS.index):
        overrides = (*base, f"experiment={preset}", *space.as_overrides(rules.get(preset, {})))
        cfg = train.config(overrides)
        out.append(Row(preset, overrides, tuple(k for k in CHOICES if applies(k, cfg))))
    return out


def implementations(rows: list[Row]) -> list[dict[str, Any]]:
    """Every combination of the choices that apply to at least one row."""
    keys = [k for k in CHOICES if any(k in r.keys for r in rows)]
    return [dict(zip(keys, values)) for values in itertools.product(*(CHOICES[k] for k in keys))]


def label(implementation: dict[str, Any]) -> str:
    return " ".join(
        f"init {AS_IT_STANDS}" if v == AS_IT_STANDS else train.mark(k, v)
        for k, v in implementation.items()
    )


def screening_jobs(rows: list[Row], parent: str | None) -> dict[jobs.Key, jobs.Job]:
    """Every row under every implementation, at seed 0 (each distinct training once)."""
    return {
        (row.label(impl), 0): row.job(impl, 0, parent)
        for impl in implementations(rows)
        for row in rows
    }


def seed_jobs(
    rows: list[Row], implementation: dict[str, Any], seeds: int, parent: str | None
) -> dict[jobs.Key, jobs.Job]:
    return {
        (row.label(implementation), seed): row.job(implementation, seed, parent)
        for row in rows
        for seed in range(seeds)
    }


def distance(preset: str, runs: pd.DataFrame) -> float:
    """The distance of the mean of ``runs`` to the original's row."""
    return Target.of(preset).distance(
        runs["test_accuracy"].mean(), runs["test_loss"].mean(), runs["stopped_epoch"].mean()
    )


@dataclass
class Joint:
    parent_run_id: str | None  # the MLflow run its groups hang under
    rows: list[Row]
    screened: pd.DataFrame  # per implementation: each row's distance at seed 0, the largest
    winner: dict[str, Any]  # the implementation whose largest distance is smallest
    over_seeds: pd.DataFrame  # per row under the winner: mean and sd over seeds, distance
    alone: pd.DataFrame  # per row: its own best implementation, and what that does to others

    @property
    def explains(self) -> bool:
        return bool((self.over_seeds["distance"] < 1).all())


def test(
    rows: list[Row], parent: ParentRun, seeds: int, workers: int, force: bool = False
) -> tuple[Joint | None, dict[jobs.Key, str]]:
    """Screen every implementation at seed 0 (the report has trained most of these runs with
    its re-runs), then the best one over ``seeds`` seeds, under ``parent``, which it ends.
    Returns the result (None if no implementation could be judged) and the runs that failed."""
    uri = train.config(rows[0].overrides).tracking.uri
    try:
        ids, errors, _ = jobs.ensure(screening_jobs(rows, parent.run_id), workers, force)
        found = jobs.collect(ids, uri, histories=False)[0] if ids else None
        screened = screen(rows, found) if found is not None else pd.DataFrame()
        if screened.empty:
            parent.end("FAILED")
            return None, errors
        winner = screened.iloc[0]["_impl"]
        ids, more, _ = jobs.ensure(seed_jobs(rows, winner, seeds, parent.run_id), workers, force)
        over = summarize_seeds(rows, winner, jobs.collect(ids, uri, histories=False)[0])
    except BaseException as err:
        parent.end(end_status(err))
        raise
    parent.end("FINISHED")
    result = Joint(
        parent.run_id, rows, screened.drop(columns="_impl"), winner, over, alone(rows, screened)
    )
    return result, {**errors, **more}


def parent_run(rows: list[Row]) -> ParentRun:
    """The joint test's MLflow run: the one of an earlier report with the same rows, or new."""
    cfg = train.config(rows[0].overrides)
    key = hashlib.sha256(repr([r.overrides for r in rows]).encode()).hexdigest()[:16]
    tags = {"kind": "joint", "joint.identity": key, "code_version": code_version()}
    found = find_finished(cfg.tracking.uri, cfg.tracking.experiment, tags)
    return ParentRun(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        "joint: one implementation for every row",
        tags,
        join_run_id=found,
        export=False,
    )


def screen(rows: list[Row], runs: pd.DataFrame) -> pd.DataFrame:
    """One row per implementation: each row's seed-0 distance, and the largest, best first."""
    by_group = {g: r for g, r in runs.groupby("group")}
    table = []
    for impl in implementations(rows):
        found = {r.preset: by_group.get(r.label(impl)) for r in rows}
        if any(v is None for v in found.values()):
            continue  # a run failed: this implementation cannot be judged
        distances = {p: distance(p, r) for p, r in found.items()}
        table.append(
            {
                "implementation": label(impl),
                **{ROWS.loc[p, "section"]: d for p, d in distances.items()},
                "largest": max(distances.values()),
                "mean": float(np.mean(list(distances.values()))),
                "_impl": impl,
            }
        )
    if not table:
        return pd.DataFrame()
    ordered = pd.DataFrame(table).sort_values(["largest", "mean"], kind="stable")
    return ordered.reset_index(drop=True)


def summarize_seeds(rows: list[Row], winner: dict[str, Any], runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for row in rows:
        mine = runs[runs["group"] == row.label(winner)]
        acc = mine["test_accuracy"].to_numpy() * 100
        each = [
            Target.of(row.preset).distance(a, b, c)
            for a, b, c in zip(mine["test_accuracy"], mine["test_loss"], mine["stopped_epoch"])
        ]
        out.append(
            {
                "experiment": ROWS.loc[row.preset, "section"],
                "preset": row.preset,
                "choices": row.label(winner).removeprefix(f"joint {row.preset} "),
                "seeds": len(mine),
                "test acc % (mean)": acc.mean(),
                "test acc % (sd)": acc.std(ddof=1) if len(acc) > 1 else np.nan,
                "test loss (mean)": mine["test_loss"].mean(),
                "stop epochs": " / ".join(str(int(e)) for e in mine["stopped_epoch"]),
                "distance": distance(row.preset, mine),
                "distance (sd)": float(np.std(each, ddof=1)) if len(each) > 1 else np.nan,
                "run ids": " ".join(mine["run_id"]),
            }
        )
    return pd.DataFrame(out)


def alone(rows: list[Row], screened: pd.DataFrame) -> pd.DataFrame:
    """Per row: the implementation it prefers on its own, its distance there, and the rows that
    implementation leaves at distance 1 or more (why one implementation cannot serve all)."""
    names = [ROWS.loc[r.preset, "section"] for r in rows]
    out = []
    for name in names:
        best = screened.sort_values([name, "largest"], kind="stable").iloc[0]
        out.append(
            {
                "experiment": name,
                "its best implementation": best["implementation"],
                "its distance": best[name],
                "rows it leaves at 1 or more": ", ".join(
                    f"{n} ({best[n]:.2f})" for n in names if best[n] >= 1
                )
                or "none",
            }
        )
    return pd.DataFrame(out)
