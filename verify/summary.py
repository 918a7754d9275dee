"""The checks of the summary: every claim it makes repeats a result derived for a later
section (verdicts, explanations, the joint test, tuning), so it is checked against those."""

from __future__ import annotations

import re

from verify.document import Section
from verify.evidence import Evidence
from verify.forensics import borrowed, named
from verify.joint import joint_sentence
from verify.tally import NUM
from verify.tuning import welch_verdict


def explanation(ev: Evidence, label: str) -> tuple[str, float] | None:
    """What the summary may name as a row's explanation: its pinned choices (or its best
    combination when none is pinned), and the best's distance over seeds."""
    f = ev.derived.get("findings", {}).get(label)
    if not f or not f["ranked"]:
        return None
    choices, best = f["ranked"][0]
    changed, _ = named(f.get("pins", {}))
    return " ".join(changed) or choices, best["distance"]


def summary(ev: Evidence, s: Section) -> None:
    t = ev.tally
    comparison = ev.derived.get("comparison", {})
    verdicts = {label: d["verdict"] for label, d in comparison.items()}

    def overview(m: re.Match) -> None:
        t.number("Summary: experiments", m["n"], len(verdicts))
        t.number("Summary: seeds", m["seeds"], len(ev.seeds))
        for group, word in (
            ("within", "within the seed spread"),
            ("better", "better"),
            ("worse", "worse"),
        ):
            names = [lb for lb, v in verdicts.items() if v == word]
            t.number(f"Summary: {group}", m[group], len(names))
            t.word(f"Summary: rows {group}", m[f"{group}_rows"] or "", "; ".join(names))

    def row(m: re.Match) -> None:
        label, found = m["label"], explanation(ev, m["label"])
        if found is None:
            t.word(f"Summary: {label}", label, "a searched row")
            return
        choices, distance = found
        reproduced = distance < 1
        t.word(f"Summary: {label} reproduced", str(m["reproduced"] is not None), str(reproduced))
        t.number(f"Summary: {label} distance", m["distance"] or m["distance2"], distance)
        t.word(
            f"Summary: {label} explanation",
            m["choices"] or m["closest"],
            choices if reproduced else ev.derived["findings"][label]["ranked"][0][0],
        )
        f = ev.derived["findings"][label]
        _, open_ = named(f.get("pins", {}))
        shown = [p for p in (m["open"] or "").split("; ") if p]
        t.number(f"Summary: {label} open choices", str(len(shown)), len(open_))
        for part, (choice, d) in zip(shown, open_):
            found = re.fullmatch(rf"(\w+): not identified, (\S+) and (\S+) within ({NUM})", part)
            if found:
                t.word(f"Summary: {label} {choice}", found[1], choice)
                t.number(f"Summary: {label} {choice} margin", found[4], abs(d["margin"]))
        if m["borrowed"]:
            borrowed(ev, m["borrowed"])

    def tuning(m: re.Match) -> None:
        derived = ev.derived.get("tuning", {})
        helped = [
            lb
            for lb, d in derived.items()
            if d.get("tuned") and welch_verdict(d["tuned"], d["hand"]) == "better"
        ]
        t.word("Summary: tuning helps", m[1] or "", "; ".join(helped))

    def one_seed(m: re.Match) -> None:
        t.number("Summary: experiments", m[1], len(verdicts))
        t.number("Summary: one seed", "1", len(ev.seeds))

    ev.sentences(
        s,
        [
            (
                r"(\d+) of the original's experiments were run with one seed each: their numbers "
                r"are below, but one seed gives no spread to judge a difference by\.",
                one_seed,
            ),
            (
                (
                    r"Of the original's (?P<n>\d+) experiments, (?P<within>\d+) (?:is|are) "
                    r"reproduced within the seed spread of (?P<seeds>\d+) seeds(?: "
                    r"\((?P<within_rows>.*?)\))?, (?P<better>\d+) (?:comes|come) out "
                    r"better(?: \((?P<better_rows>.*?)\))? and (?P<worse>\d+) worse(?: "
                    r"\((?P<worse_rows>.*?)\))?\."
                ),
                overview,
            ),
            (
                (
                    rf"(?P<label>.+?): (?:(?P<reproduced>reproduced) \(distance "
                    rf"(?P<distance>{NUM})\) by (?P<choices>.+?)|no tested implementation "
                    rf"choice reproduces it; the closest is (?P<closest>.+?) \(distance "
                    rf"(?P<distance2>{NUM}), 1 would be a match\))(?:; (?P<open>.+?))?\.(?: "
                    rf"(?P<borrowed>The original gives no stop epoch .*))?"
                ),
                row,
            ),
            (
                (
                    r"One implementation for every row \((.+?), each row keeping its own "
                    r"length rule\): (.*)"
                ),
                lambda m: joint_sentence(ev, m),
            ),
            (
                (
                    r"Tuning each experiment's learning rate \(and lambda\) fairly (?:helps "
                    r"(.+) beyond the seed spread|changes no result beyond what the seeds can "
                    r"tell apart) \(Welch, 5%\)\."
                ),
                tuning,
            ),
        ],
    )
    table = s.table("The original against ours")
    for r in table.rows if table else []:
        label, d = r["experiment"], comparison.get(r["experiment"])
        if d is None:
            t.word(f"Summary: {label}", label, "one of the original's rows with runs")
            continue
        t.number(f"Summary: {label} original", r["original acc %"], d["original acc %"])
        mean_sd = r["ours acc %"].split(" ± ")
        t.number(f"Summary: {label} mean", mean_sd[0], d["ours acc % (mean)"])
        t.number(
            f"Summary: {label} sd", mean_sd[1] if len(mean_sd) > 1 else "-", d["ours acc % (sd)"]
        )
        t.word(f"Summary: {label} verdict", r["verdict"], d["verdict"].replace("no verdict", "-"))
        found = explanation(ev, label)
        if found is None:
            t.word(f"Summary: {label} explanation", r["best explanation found"], "-")
            continue
        choices, distance = found
        shown = re.fullmatch(
            rf"(.+) \(distance ({NUM}), (reproduced|not reproduced)\)", r["best explanation found"]
        )
        if shown is None:
            t.word(
                f"Summary: {label} explanation",
                r["best explanation found"],
                f"{choices} (distance ...)",
            )
            continue
        t.word(f"Summary: {label} explanation", shown[1], choices)
        t.number(f"Summary: {label} explanation distance", shown[2], distance)
        t.word(
            f"Summary: {label} reproduced",
            shown[3],
            "reproduced" if distance < 1 else "not reproduced",
        )
