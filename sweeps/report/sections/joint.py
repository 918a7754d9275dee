"""One implementation for every row (``sweeps.joint``): does a single program, making each open
choice once, explain all six rows at once?"""

from __future__ import annotations

from sweeps.joint import Joint, label
from sweeps.report.context import Context
from sweeps.report.document import Section

TITLE = "One implementation for every row"
SHOWN = 8  # implementations in the screening table, best first
ROUNDED = {"test acc % (mean)": 2, "test acc % (sd)": 2, "test loss (mean)": 4, "distance": 3}
ROUNDED |= {"distance (sd)": 3}  # as shown: the numbers behind them stay whole


def joint_sentence(j: Joint) -> str:
    """The summary's sentence: which implementation, and whether it explains every row."""
    worst = j.over_seeds.sort_values("distance").iloc[-1]
    head = (
        f"One implementation for every row ({label(j.winner)}, each row keeping its own "
        f"length rule): "
    )
    if j.explains:
        return head + (
            f"it explains all {len(j.over_seeds)} rows at once, the largest distance "
            f"{worst['distance']:.2f} ({worst['experiment']})."
        )
    conflicts = j.over_seeds[j.over_seeds["distance"] >= 1]
    at_seed_0 = j.screened.iloc[0]["largest"]
    return head + (
        "no tested implementation explains every row at once; over the seeds the closest leaves "
        + ", ".join(
            f"{r['experiment']} at {r['distance']:.2f} (sd {r['distance (sd)']:.2f})"
            for _, r in conflicts.iterrows()
        )
        + f" (at seed 0 its largest distance was {at_seed_0:.2f})."
    )


def section(ctx: Context) -> Section | None:
    j = ctx.joint
    if j is None:
        return None
    n = len(j.screened)
    text = [
        "The original was one program, so each choice it leaves open was made once for all its "
        "networks. Every combination of the shared choices (the initialisation of every network "
        "with a hidden layer; for the penalised rows where lambda meets the batch, eq. 7's 1/2 "
        "for L1, penalised biases, and what stopping watches where it watches anything) is an "
        "implementation; each row keeps its own length rule (a searched row the one of its best "
        f"combination). All {n} implementations were evaluated on every row at seed 0; the one "
        f"whose largest distance is smallest was re-run over {len(ctx.seeds)} seeds.",
        joint_sentence(j),
    ]
    if not j.explains:
        for _, r in j.alone.iterrows():
            if r["rows it leaves at 1 or more"] != "none":
                text.append(
                    f"{r['experiment']} on its own prefers {r['its best implementation']} "
                    f"(distance {r['its distance']:.2f}), which leaves "
                    f"{r['rows it leaves at 1 or more']}."
                )
    shown = j.screened.head(SHOWN)
    return Section(
        TITLE,
        text,
        [
            (
                f"The best implementation over seeds, per row ({label(j.winner)})",
                j.over_seeds.assign(runs=j.over_seeds["run ids"].map(ctx.links))
                .drop(columns=["preset", "run ids"])
                .round(ROUNDED),
            ),
            ("The best implementations, distance per row at seed 0", shown.round(3)),
            ("Each row's own best implementation", j.alone.round(3)),
        ],
    )
