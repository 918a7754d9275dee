"""Where we differ from the original, and why: the forensic search of each experiment outside
the seed spread (``sweeps.forensics``), as tables and sentences made from its numbers."""

from __future__ import annotations

import pandas as pd

from sweeps.forensics import Finding
from sweeps.identification import headline
from sweeps.original import ROWS, borrowed_length
from sweeps.report.context import Context
from sweeps.report.document import Section
from sweeps.report.sections.joint import ROUNDED

TITLE = "Where we differ from the original, and why"
RULE = (
    "Each row outside the seed spread is searched over the implementation choices the original "
    "leaves open, at its own hyperparameters. A combination's distance to the original's row is "
    "the root mean square of each number's error in tolerances: accuracy within 0.5 point, loss "
    "within 10%, stop epoch within max(2, 20%) epochs where the original gives one. Under 1, "
    "every number is within its tolerance and the row is reproduced."
)


def section(ctx: Context) -> Section:
    if len(ctx.seeds) < 2:
        return Section(TITLE, ["With one seed no row can be told apart: run two seeds or more."])
    if not ctx.findings:
        return Section(
            TITLE, ["Every experiment agrees within the seed spread: nothing to explain."]
        )
    s = Section(TITLE, [RULE, IDENTIFIED])
    for finding in ctx.findings:
        name = ROWS.loc[finding.preset, "section"]
        s.text += explain(finding)
        s.tables.append((f"{name}: the closest combinations over seeds", shown(ctx, finding)))
        if not finding.identified.empty:
            s.tables.append((f"{name}: which choices the evidence pins", pins(finding)))
    return s


IDENTIFIED = (
    "A choice of the best combination is identified when every combination that changes it "
    "(the closest one is shown) is farther from the original's row by more than the seed "
    "spread (sd over seeds) of the best one's distance; a distance is that of the mean over "
    "seeds where the combination was re-run, else that of seed 0, which every combination was "
    "tried with; a combination the pruner stopped counts as farther. Only identified choices "
    "are named as the explanation."
)


def pins(f: Finding) -> pd.DataFrame:
    distances = ("its distance", "best distance", "margin", "seed spread")
    return f.identified.drop(columns=["key", "label"]).round(dict.fromkeys(distances, 4))


def shown(ctx: Context, f: Finding) -> pd.DataFrame:
    t = f.s.target
    original = {
        "choices": "the original",
        "test acc % (mean)": 100 * t.accuracy,
        "test loss (mean)": t.loss,
        "stop epochs": str(t.stop_epoch) if t.stop_epoch else "-",
    }
    ranked = f.ranking.assign(runs=f.ranking["run ids"].map(ctx.links)).drop(columns=["run ids"])
    return pd.concat([pd.DataFrame([original]), ranked.round(ROUNDED)], ignore_index=True)


def explain(f: Finding) -> list[str]:
    t, r = f.s.target, f.ranking
    counts = f.trials["state"].value_counts()
    how = (
        "every combination"
        if f.s.n_trials >= f.combos
        else f"a seeded random sample of {f.s.n_trials} distinct ones"
    )
    lines = [
        f"{ROWS.loc[f.preset, 'section']}: {len(f.trials)} of its {f.combos} combinations "
        f"tried ({how}); "
        f"{counts.get('pruned', 0)} stopped early as hopeless, {counts.get('complete', 0)} ran out."
        + (f" {borrowed_length(f.preset)}" if borrowed_length(f.preset) else "")
    ]
    best = r.iloc[0]
    baseline = r[r["choices"] == "as it stands"]
    base_d = float(baseline["distance"].iloc[0]) if not baseline.empty else float("nan")
    errors = t.errors(best["test acc % (mean)"] / 100, best["test loss (mean)"], _stop(best))
    off = [f"{k} ({v:.1f} tolerances off)" for k, v in errors.items() if v > 1]
    described = (
        f"{best['choices']} gives {best['test acc % (mean)']:.2f}% and loss "
        f"{best['test loss (mean)']:.4f} over {int(best['seeds'])} seed(s), stopping at epochs "
        f"{best['stop epochs']}, distance {best['distance']:.2f}"
    )
    pinned, open_ = headline(f.identified) if not f.identified.empty else ([], [])
    evidence = f" The evidence pins {' '.join(pinned) or 'none of its changes'}" + (
        f"; {'; '.join(open_)}." if open_ else "."
    )
    if best["choices"] == "as it stands":
        verdict = "No tested combination comes closer than the row as it stands: the difference "
        verdict += "lies outside these choices"
        evidence = ""
    elif best["distance"] < 1:
        verdict = "It reproduces the original's row"
    else:
        verdict = "It does not reproduce the original's row"
    still = f"; still off: {', '.join(off)}." if off else "."
    lines.append(f"Best: {described} (as it stands: {base_d:.2f}). {verdict}{still}{evidence}")
    return lines


def _stop(row: pd.Series) -> float | None:
    epochs = [int(e) for e in str(row["stop epochs"]).split(" / ") if e.strip().isdigit()]
    return sum(epochs) / len(epochs) if epochs else None
