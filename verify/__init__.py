"""An independent verifier of the written report: every number ``reports/report.md`` states is
derived again from the raw records (the MLflow store's runs, the Optuna storage's trials) by a
deliberately plain code path that imports nothing of the product (``pipeline``, ``sweeps``),
and compared at the precision it is printed with.

    python -m verify [reports/report.md] [--uri URI] [--storage URL]    # make verify-report

It prints ``verified N numbers, 0 disagree``, or one line per disagreement (what the report
says, what the records say) and exits 1. A sentence with a number that no rule here knows is a
disagreement too: a new claim in the report needs a rule before it can pass. Facts of the
process rather than of the records (when the report was made, from which commit, how many runs
were reused) are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from verify import document, forensics, gradcheck, joint, results, summary, tuning
from verify.evidence import Evidence
from verify.records import Records, default_uri
from verify.tally import Tally

# the report's sections, in the order their checks derive what later ones repeat
CHECKS = {
    "Setup": results.setup,
    "The report's experiments over seeds": results.experiments,
    "Where we differ from the original, and why": forensics.differences,
    "One implementation for every row": joint.joint,
    "Gradient check (report section 3, Table 1)": gradcheck.gradcheck,
    "Activations compared": results.activations,
    "Does L1 give sparser weights than L2?": results.sparsity,
    "What tuning gives": tuning.tuning,
    "Failed runs": results.failures,
    "Summary": summary.summary,
}
COUNT_LINE = (
    "An independent verifier (`make verify-report`, a separate code path) re-derived {n} "
    "numbers of this report from the MLflow store and the Optuna storage: {bad} disagree."
)


@dataclass
class Verdict:
    checked: int
    disagreements: list[str]

    def __str__(self) -> str:
        head = f"verified {self.checked} numbers, {len(self.disagreements)} disagree"
        return "\n".join([head, *self.disagreements])


def where_from(setup: document.Section | None) -> tuple[str | None, str, str | None]:
    """The store, experiment and core code version the report says its numbers come from
    (the code version is checked against every run the report rests on)."""
    lines = setup.lines if setup else []
    code = next((m[1] for x in lines if (m := re.search(r"core code version (\w+)", x))), None)
    for line in lines:
        m = re.match(
            r"Every number comes from an MLflow run in experiment '(.+?)' of (\S+?);", line
        )
        if m:
            return (None if "***" in m[2] else m[2]), m[1], code
    return None, "mnist-mlp", code


def verify(path: Path, uri: str | None = None, storage: str | None = None) -> Verdict:
    sections = document.read(path)
    stated, experiment, code = where_from(sections.get("Setup"))
    tally = Tally()
    ev = Evidence(Records(uri or stated or default_uri(), experiment, storage, code), tally)
    for title, check in CHECKS.items():
        if title in sections:
            try:
                check(ev, sections[title])
            except Exception as err:  # a record missing or malformed: said, never a traceback
                tally.unverified(title, f"its check stopped at {type(err).__name__}: {err}")
    for title, section in sections.items():
        for table in section.tables if title in CHECKS else ():
            if not table.read:
                tally.unverified(title, f"the table {table.caption!r}")
        if title not in CHECKS and (
            section.tables or any(re.search(r"\d", x) for x in section.lines)
        ):
            tally.unverified(title, "a section the verifier has no rules for")
    count = ev.derived.get("count line")  # the report's own statement of this count (left out)
    if count is not None and (int(count[1]), int(count[2])) != (
        tally.checked,
        len(tally.disagreements),
    ):
        tally.disagree(
            "Setup: the verifier's count",
            f"{count[1]} and {count[2]}",
            f"{tally.checked} and {len(tally.disagreements)}",
        )
    return Verdict(tally.checked, tally.disagreements)
