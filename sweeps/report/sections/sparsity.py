"""The original's open question (section 5.2): does L1 give sparser weights than L2?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeps.report import figures
from sweeps.report.context import Context
from sweeps.report.document import Section

NEAR_ZERO = 1e-3  # |w| below this counts as a zero weight
PENALTIES = {"l1": "L1", "l2": "L2", "momentum": "no penalty"}


def section(ctx: Context) -> Section | None:
    weights: dict[str, list[np.ndarray]] = {}
    for (preset, _), w in sorted(ctx.weights.items()):
        if preset in PENALTIES:
            weights.setdefault(preset, []).append(w)
    if not {"l1", "l2"} <= weights.keys():
        return None
    rows = []
    for preset, arrays in weights.items():
        shares = [float(np.mean(np.abs(w) < NEAR_ZERO)) for w in arrays]
        rows.append(
            {
                "experiment": PENALTIES[preset],
                "seeds": len(arrays),
                "near-zero weights % (mean)": round(100 * np.mean(shares), 2),
                "near-zero weights % (seeds)": " / ".join(f"{100 * f:.2f}" for f in shares),
                "median weight magnitude": float(np.median(np.abs(np.concatenate(arrays)))),
            }
        )
    table = pd.DataFrame(rows)
    share = table.set_index("experiment")["near-zero weights % (mean)"]
    consistent = all(
        a > b
        for a, b in zip(
            [np.mean(np.abs(w) < NEAR_ZERO) for w in weights["l1"]],
            [np.mean(np.abs(w) < NEAR_ZERO) for w in weights["l2"]],
        )
    )
    answer = "Yes" if share["L1"] > share["L2"] else "No"
    text = [
        f"{answer}: {share['L1']:.2f}% of the L1 network's weights are below {NEAR_ZERO:g} in "
        f"magnitude, against {share['L2']:.2f}% with L2"
        + (f" and {share['no penalty']:.2f}% with no penalty" if "no penalty" in share else "")
        + (", in every seed." if consistent else "; the seeds do not all agree.")
    ]
    fig = figures.figure(8, 4)
    (ax,) = fig.axes
    bins = np.logspace(-8, 1, 91)
    for preset, arrays in weights.items():
        ax.hist(np.abs(arrays[0]), bins=bins, histtype="step", lw=1.5, label=PENALTIES[preset])
    ax.axvline(NEAR_ZERO, color="grey", ls=":", label=f"|w| = {NEAR_ZERO:g}")
    ax.set(
        xscale="log",
        xlabel="|w| (all weights, seed 0)",
        ylabel="count",
        title="Weight magnitudes: L1 against L2 and no penalty",
    )
    ax.legend()
    path = figures.save(fig, ctx.figures / "sparsity.png")
    return Section(
        "Does L1 give sparser weights than L2?",
        text,
        [("Share of near-zero weights", table)],
        [("Weight magnitudes", path)],
    )
