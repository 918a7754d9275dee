"""What tuning gives: each experiment's hand-picked settings against a fair search over its
learning rate (and lambda), both over seeds (``sweeps.tuning``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sweeps.original import ROWS
from sweeps.report import figures
from sweeps.report.context import Context
from sweeps.report.document import Section, pm

TITLE = "What tuning gives"


def section(ctx: Context) -> Section | None:
    t = ctx.tuning
    if t is None:
        return None
    s = t.s
    text = [
        f"Each experiment gets its own study of its learning rate (and lambda where there is a "
        f"penalty): trials run until {s.min_complete} are complete (at most {s.n_trials}; "
        f"{s.pruner} pruner), so no experiment is starved by a sampler that prefers another. A "
        "trial whose validation accuracy stays within 5 points of always guessing the commonest "
        "class never learned: it is counted, never anyone's best. Each experiment's best trial "
        f"(by validation loss; the test set never selects) is retrained over {len(ctx.seeds)} "
        "seed(s) and set against the hand-picked runs with Welch's t-test at the 5% level."
    ]
    for _, row in t.best.iterrows():
        text.append(sentence(row))
    table = t.best.assign(experiment=t.best["experiment"].map(label))
    if "tuned run ids" in table:
        table = table.assign(
            **{
                "best trial run": table["best trial run id"].map(
                    lambda r: ctx.link(r) if isinstance(r, str) and r else None
                ),
                "tuned runs": table["tuned run ids"].map(
                    lambda r: ctx.links(r) if isinstance(r, str) else None
                ),
            }
        ).drop(columns=["best trial run id", "tuned run ids"])
    s_out = Section(TITLE, text, [("Per experiment: the search, and both sides over seeds", table)])
    if not t.importances.empty:
        s_out.tables.append(
            ("What matters (Optuna's parameter importances, fANOVA)", t.importances)
        )
    s_out.figures.append(("Hand-picked against tuned, mean ± sd over seeds", figure(ctx, table)))
    return s_out


def label(preset: str) -> str:
    return ROWS.loc[preset, "section"] if preset in ROWS.index else preset


def sentence(row: pd.Series) -> str:
    name = label(row["experiment"])
    counted = f"{row['complete']} complete of {row['trials']} trials"
    if "tuned acc % (mean)" not in row or pd.isna(row.get("tuned acc % (mean)")):
        return (
            f"{name}: no trial learned anything ({counted}, {row['never learned']} near chance), "
            "so tuning has no answer for it in this range."
        )
    lam = "" if pd.isna(row.get("tuned lambda")) else f", lambda {row['tuned lambda']:.2g}"
    tuned = pm(row["tuned acc % (mean)"], row["tuned acc % (sd)"])
    hand = pm(row["hand-picked acc % (mean)"], row["hand-picked acc % (sd)"])
    p = "" if pd.isna(row["p (Welch)"]) else f", p = {row['p (Welch)']:.2g}"
    outcome = {
        "better": "tuning helped",
        "worse": "the hand-picked setting is better",
        "no clear difference": "no difference the seeds can tell apart",
        "too few runs": "too few runs to tell",
    }[row["verdict"]]
    return (
        f"{name}: best of {counted}: lr {row['tuned lr']:.3g}{lam} gives {tuned}% against "
        f"{hand}% hand-picked ({row['gain (points)']:+.2f} points{p}): {outcome}."
    )


def figure(ctx: Context, table: pd.DataFrame) -> Path:
    fig = figures.figure(9, 4, bottom=1.0)  # the experiments' names, slanted
    (ax,) = fig.axes
    x = np.arange(len(table))
    for offset, side, color in ((-0.15, "hand-picked", "tab:blue"), (0.15, "tuned", "tab:orange")):
        mean = table.get(f"{side} acc % (mean)", pd.Series(np.nan, index=table.index))
        sd = table.get(f"{side} acc % (sd)", pd.Series(np.nan, index=table.index)).fillna(0)
        ax.errorbar(x + offset, mean, yerr=sd, fmt="o", capsize=4, color=color, label=side)
    ax.set_xticks(x, table["experiment"], rotation=15)
    ax.set(ylabel="test accuracy %", title="Hand-picked against tuned (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = figures.save(fig, ctx.figures / "tuning.png")
    return path
