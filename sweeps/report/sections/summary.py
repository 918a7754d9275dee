"""The summary a reader sees first: what reproduced, what did not and why, what tuning gives."""

from __future__ import annotations

import pandas as pd

from sweeps.identification import headline
from sweeps.original import BETTER, NO_VERDICT, WITHIN, WORSE, borrowed_length
from sweeps.report.context import Context
from sweeps.report.document import Section, pm
from sweeps.report.sections.joint import joint_sentence


def section(ctx: Context) -> Section:
    table = ctx.comparison
    names = {v: list(table[table["verdict"] == v]["experiment"]) for v in (WITHIN, BETTER, WORSE)}
    if len(ctx.seeds) < 2:
        overview = (
            f"{len(table)} of the original's experiments were run with one seed each: their "
            "numbers are below, but one seed gives no spread to judge a difference by."
        )
    else:
        overview = (
            f"Of the original's {len(table)} experiments, {len(names[WITHIN])} "
            + ("is" if len(names[WITHIN]) == 1 else "are")
            + " reproduced "
            f"within the seed spread of {len(ctx.seeds)} seeds"
            + _list(names[WITHIN])
            + f", {len(names[BETTER])} "
            + ("comes" if len(names[BETTER]) == 1 else "come")
            + " out better"
            + _list(names[BETTER])
            + f" and {len(names[WORSE])} worse"
            + _list(names[WORSE])
            + "."
        )
    lines = [overview]
    explained = {}
    for f in ctx.findings:
        best = f.ranking.iloc[0]
        reproduced = best["distance"] < 1
        pinned, open_ = headline(f.identified) if not f.identified.empty else ([], [])
        named = " ".join(pinned) or best["choices"]
        explained[f.preset] = f"{named} (distance {best['distance']:.2f}" + (
            ", reproduced)" if reproduced else ", not reproduced)"
        )
        lines.append(
            f"{_name(table, f.preset)}: "
            + (
                f"reproduced (distance {best['distance']:.2f}) by {named}"
                if reproduced
                else f"no tested implementation choice reproduces it; the closest is "
                f"{best['choices']} (distance {best['distance']:.2f}, 1 would be a match)"
            )
            + (f"; {'; '.join(open_)}" if open_ else "")
            + "."
            + (f" {borrowed_length(f.preset)}" if borrowed_length(f.preset) else "")
        )
    if ctx.joint is not None:
        lines.append(joint_sentence(ctx.joint))
    if ctx.tuning is not None and not ctx.tuning.best.empty and "verdict" in ctx.tuning.best:
        helped = ctx.tuning.best[ctx.tuning.best["verdict"] == "better"]["experiment"]
        helped = [_name(table, p) for p in helped]
        lines.append(
            "Tuning each experiment's learning rate (and lambda) fairly "
            + (
                f"helps {'; '.join(helped)} beyond the seed spread (Welch, 5%)"
                if len(helped)
                else "changes no result beyond what the seeds can tell apart (Welch, 5%)"
            )
            + "."
        )
    key = pd.DataFrame(
        {
            "experiment": table["experiment"],
            "original acc %": table["original acc %"],
            "ours acc %": [
                pm(m, s) for m, s in zip(table["ours acc % (mean)"], table["ours acc % (sd)"])
            ],
            "verdict": table["verdict"].replace(NO_VERDICT, "-"),
            "best explanation found": [explained.get(p, "-") for p in table["preset"]],
        }
    )
    return Section("Summary", lines, [("The original against ours", key)])


def _list(items: list[str]) -> str:
    return f" ({'; '.join(items)})" if items else ""


def _name(table: pd.DataFrame, preset: str) -> str:
    return str(table.set_index("preset").loc[preset, "experiment"])
