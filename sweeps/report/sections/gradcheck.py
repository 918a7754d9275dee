"""The report's Table 1 (section 3) as printed, beside ours, and where its own columns disagree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeps.report.context import Context
from sweeps.report.document import Section

BOUND = 1e-4  # the original's: epsilon 1e-2 gives gradients within O(epsilon^2)


def section(ctx: Context) -> Section:
    rows = ctx.gradcheck
    worst = rows["abs_difference"].max()
    theirs = rows["report_abs_difference"]
    over = rows[theirs > BOUND]["weight"].tolist()
    opposite = rows[np.sign(rows["report_numerical"]) != np.sign(rows["report_backprop"])]
    recomputed = (rows["report_numerical"] - rows["report_backprop"]).abs()
    # a printed difference that its own printed gradients cannot give, even rounded (half a
    # unit of the printed gradients' last digits is well below 10% of these differences)
    mismatch = rows[(recomputed - theirs).abs() > 0.1 * theirs]
    text = [
        f"Ours: backprop and the numerical gradient (epsilon 1e-2, one training image) differ by "
        f"at most {worst:.2e}, {'within' if worst < BOUND else 'above'} the bound of 1e-4. Every "
        "parameter of a small float64 network agrees to better than 1e-6 relative error for "
        "each activation and penalty (`python -m pipeline.gradcheck`).",
        f"The original's text says every row is within 1e-4; its Table 1, as printed, has "
        f"{len(over)} of its {len(rows)} differences above it ("
        + ", ".join(f"{w} {d:g}" for w, d in zip(over, theirs[theirs > BOUND]))
        + ").",
    ]
    if len(opposite) or len(mismatch):
        parts = []
        if len(opposite):
            parts.append(
                f"in {len(opposite)} rows ({', '.join(opposite['weight'])}) its numerical and "
                "backprop gradients have opposite signs, which no correct gradient check gives"
            )
        for i, r in mismatch.iterrows():
            parts.append(
                f"the {r['weight']} row prints a difference of {r['report_abs_difference']:g} "
                f"where its own gradients, {r['report_numerical']:g} and "
                f"{r['report_backprop']:g}, differ by {recomputed[i]:.2g}"
            )
        text.append("Its columns also disagree with each other: " + "; ".join(parts) + ".")
    table = pd.DataFrame(
        {
            "weight": rows["weight"],
            "original: numerical": rows["report_numerical"],
            "original: backprop": rows["report_backprop"],
            "original: abs difference (as printed)": theirs,
            "ours: numerical": rows["numerical"],
            "ours: backprop": rows["backprop"],
            "ours: abs difference": rows["abs_difference"],
        }
    )
    return Section(
        "Gradient check (report section 3, Table 1)",
        text,
        [("Table 1: the original's as printed, beside ours", table)],
    )
