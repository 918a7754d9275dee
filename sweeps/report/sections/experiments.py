"""The report's experiments over seeds: the comparison table and the per-experiment curves."""

from __future__ import annotations

import pandas as pd

from sweeps.original import BETTER, NO_VERDICT, ROWS, WITHIN, WORSE
from sweeps.report import figures
from sweeps.report.context import Context
from sweeps.report.document import Section, pm

RULE = (
    "The original's accuracy is one training run, so it is 'within the seed spread' when it "
    "lies inside the 95% prediction interval of one new run of ours: mean ± t(0.975, n-1) · sd "
    "· sqrt(1 + 1/n) over our n seeds; otherwise ours is 'better' or 'worse'."
)


def section(ctx: Context) -> Section:
    table = ctx.comparison
    text = [
        RULE
        if len(ctx.seeds) > 1
        else (
            "With one seed there is no spread to judge a difference by, so no verdict is given; "
            "run with report.seeds=3 or more for one."
        )
    ]
    for _, row in table.iterrows():
        text.append(
            f"{row['experiment']}: the original {row['original acc %']:.2f}%, ours "
            f"{pm(row['ours acc % (mean)'], row['ours acc % (sd)'])}% "
            f"({row['diff (points)']:+.2f} points)"
            + (
                f": {row['verdict']} (one run of ours lies in {row['95% interval of one run']})"
                if row["verdict"] != NO_VERDICT
                else ""
            )
            + f"; stopped at epochs {row['ours stop epochs']}"
            + (
                f" (the original: {int(row['original stop epoch'])})."
                if pd.notna(row["original stop epoch"])
                else "."
            )
        )
    counts = table["verdict"].value_counts()
    if len(ctx.seeds) > 1:
        text.append(
            f"In all, {counts.get(WITHIN, 0)} of {len(table)} experiments agree with the original "
            f"within the seed spread, {counts.get(BETTER, 0)} "
            + ("does" if counts.get(BETTER, 0) == 1 else "do")
            + " better and "
            f"{counts.get(WORSE, 0)} worse."
        )
    section = Section(
        "The report's experiments over seeds",
        text,
        [("The original against ours", table.drop(columns=["preset"]))],
    )
    for preset in ctx.plan.r.presets:
        histories = [ctx.histories[k] for k in sorted(ctx.histories) if k[0] == preset]
        if not histories:
            continue
        name = ROWS.loc[preset, "section"] if preset in ROWS.index else preset
        path = figures.curves(histories, name, ctx.figures / f"curves_{preset}.png")
        section.figures.append((f"{name}: loss and accuracy per epoch", path))
    return section
