"""The checks of the gradient check: Table 1 against the gradient-check run's own table, the
original's columns against the verifier's own transcription of them, and the sentences."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from verify.document import Section
from verify.evidence import Evidence
from verify.original import TABLE1, TABLE1_BOUND
from verify.tally import NUM


def gradcheck(ev: Evidence, s: Section) -> None:
    """Table 1 against the gradient-check run's own table, the original's columns against the
    verifier's transcription of it, and the sentences about both."""
    t, table = ev.tally, s.table("Table 1")
    run_id = ev.links.get("gradient check")
    if run_id is None:
        t.unverified(s.title, "no link to the gradient-check run in the setup section")
        return
    recorded = pd.read_csv(ev.records.artifact(run_id, "gradcheck_table1.csv")).set_index("weight")
    ours = (recorded["numerical"] - recorded["backprop"]).abs()
    for row in table.rows if table else []:
        w, where = row["weight"], f"{s.title}: {row['weight']}"
        numerical, backprop, printed = TABLE1[w]
        t.number(f"{where} original numerical", row["original: numerical"], numerical)
        t.number(f"{where} original backprop", row["original: backprop"], backprop)
        t.number(
            f"{where} original difference", row["original: abs difference (as printed)"], printed
        )
        t.number(f"{where} our numerical", row["ours: numerical"], recorded.loc[w, "numerical"])
        t.number(f"{where} our backprop", row["ours: backprop"], recorded.loc[w, "backprop"])
        t.number(f"{where} our difference", row["ours: abs difference"], ours[w])
    over = {w: d for w, (_, _, d) in TABLE1.items() if d > TABLE1_BOUND}
    opposite = [w for w, (n, b, _) in TABLE1.items() if np.sign(n) != np.sign(b)]

    def ours_line(m: re.Match) -> None:
        t.number(f"{s.title}: our largest difference", m[1], ours.max())
        t.word(f"{s.title}: within", m[2], "within" if ours.max() < TABLE1_BOUND else "above")

    def theirs_line(m: re.Match) -> None:
        t.number(f"{s.title}: rows above", m[1], len(over))
        t.number(f"{s.title}: rows", m[2], len(TABLE1))
        shown = dict(re.findall(rf"([A-Za-z ]+?) ({NUM})(?:, |$)", m[3]))
        t.word(f"{s.title}: rows above 1e-4", ", ".join(shown), ", ".join(over))
        for w, value in shown.items():
            t.number(f"{s.title}: {w}", value, over.get(w.strip()))

    def columns_line(m: re.Match) -> None:
        t.number(f"{s.title}: opposite signs", m[1], len(opposite))
        t.word(f"{s.title}: rows with opposite signs", m[2], ", ".join(opposite))
        n, b, printed = TABLE1[m[3]]
        t.number(f"{s.title}: printed difference", m[4], printed)
        t.number(f"{s.title}: its numerical", m[5], n)
        t.number(f"{s.title}: its backprop", m[6], b)
        t.number(f"{s.title}: their difference", m[7], abs(n - b))

    ev.sentences(
        s,
        [
            (
                (
                    rf"Ours: backprop and the numerical gradient \(epsilon 1e-2, one training "
                    rf"image\) differ by at most ({NUM}), (within|above) the bound of 1e-4\. "
                    rf"Every parameter of a small float64 network agrees to better than 1e-6 .*"
                ),
                ours_line,
            ),
            (
                (
                    r"The original's text says every row is within 1e-4; its Table 1, as "
                    r"printed, has (\d+) of its (\d+) differences above it \((.*)\)\."
                ),
                theirs_line,
            ),
            (
                (
                    rf"Its columns also disagree with each other: in (\d+) rows \((.+?)\) its "
                    rf"numerical and backprop gradients have opposite signs, which no correct "
                    rf"gradient check gives; the (.+?) row prints a difference of ({NUM}) "
                    rf"where its own gradients, ({NUM}) and ({NUM}), differ by ({NUM})\."
                ),
                columns_line,
            ),
        ],
    )
