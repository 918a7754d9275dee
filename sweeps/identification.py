"""Which of a row's best choices the evidence pins, and which it leaves open.

The best combination of a forensic search is a set of choices (stopping rule, where lambda
meets the batch, penalised biases, initialisation, ...). A choice is **identified** when every
combination that changes it lands farther from the original's row than the best one, by more
than the seed spread of the best one's distance: then no other value of that choice explains
the row as well, whatever the seed. Otherwise the evidence does not tell its values apart, and
the report must not name it as part of the explanation.

A combination's distance is that of its mean over the report's seeds where it was re-run (the
best three are), else that of seed 0, the seed every combination was tried with; the spread
is the standard deviation of the best combination's distance over the seeds. A combination the
pruner stopped counts as farther (it was stopped because it could not come closer).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from pipeline import train
from sweeps import settings

NO, YES, UNTESTED = "no", "yes", "not tested"


def identify(
    s: settings.Settings, trials: pd.DataFrame, ranking: pd.DataFrame, stands: dict[str, Any]
) -> pd.DataFrame:
    """One row per choice of the best combination: its value, the closest combination with that
    choice changed, the margin between them, the seed spread, and whether it is identified.

    ``trials`` is the search's trials table (``forensics.trials_table``), ``ranking`` its best
    combinations over seeds, ``stands`` the row's choices as it stands (for its label)."""
    from sweeps.forensics import active

    best = ranking.iloc[0]
    own = trials[trials["choices"] == best["choices"]]
    if own.empty:  # the best is "as it stands", which the search may not have tried
        return pd.DataFrame()
    chosen = active(s, own.iloc[0]["params"])
    over_seeds = dict(zip(ranking["choices"], ranking["distance"]))
    best_distance = float(best["distance"])
    spread = float(best.get("distance (sd)", math.nan))
    rows = []
    for key, value in chosen.items():
        if key == "trainer.epochs":  # the length of a fixed-length rule: part of its stopping
            continue
        others = [
            (row["state"], over_seeds.get(row["choices"], row["distance"]), params.get(key))
            for _, row in trials.iterrows()
            if (params := active(s, row["params"])).get(key) != value
        ]
        complete = [(d, v) for state, d, v in others if state == "complete" and not math.isnan(d)]
        pruned = sum(state == "pruned" for state, _, _ in others)
        closest, alternative = min(complete, key=lambda dv: dv[0]) if complete else (math.nan, None)
        margin = closest - best_distance
        identified = (YES if margin > spread else NO) if complete else (YES if pruned else UNTESTED)
        label = train.mark(key, value)
        if key == "trainer.stopping" and "trainer.epochs" in chosen:
            label += " " + train.mark("trainer.epochs", chosen["trainer.epochs"])
        rows.append(
            {
                "choice": key.rsplit(".", 1)[-1],
                "key": key,
                "label": label,
                "best": value,
                "as it stands": stands.get(key, "-"),
                "closest other": alternative if complete else ("pruned" if pruned else "-"),
                "its distance": closest,
                "best distance": best_distance,
                "margin": margin,
                "seed spread": spread,
                "identified": identified,
            }
        )
    return pd.DataFrame(rows)


def headline(identified: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The pinned choices that change the row as it stands (``stopping=none ep=5``), and the
    ones the evidence leaves open (``init: not identified, uniform and glorot within 0.003``)."""
    pinned, open_ = [], []
    for _, r in identified.iterrows():
        if r["identified"] == YES:
            if str(r["best"]) != str(r["as it stands"]):
                pinned.append(r["label"])
        elif r["identified"] == NO:
            open_.append(
                f"{r['choice']}: not identified, {r['best']} and {r['closest other']} within "
                f"{abs(r['margin']):.2g}"
            )
        else:
            open_.append(f"{r['choice']}: not tested")
    return pinned, open_
