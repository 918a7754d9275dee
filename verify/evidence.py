"""What the verifier has derived so far, shared by the checks of every section: the runs the
report rests on (anchored by the run ids its setup section links to), and the answers derived
from them that later sections (the summary) repeat."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verify.document import Section
from verify.original import LABEL, PRESET
from verify.records import Records, Run
from verify.tally import Tally

Rule = tuple[str, Callable[[re.Match], None]]  # a sentence's pattern, and what checks it


@dataclass
class Evidence:
    records: Records
    tally: Tally
    seeds: list[int] = field(default_factory=list)
    runs: dict[str, list[Run]] = field(default_factory=dict)  # preset -> its runs by seed
    studies: dict[str, tuple[str, str]] = field(default_factory=dict)  # what -> (study, storage)
    links: dict[str, str] = field(default_factory=dict)  # what -> MLflow run id (setup table)
    derived: dict[str, Any] = field(default_factory=dict)  # answers later sections repeat

    def accuracies(self, preset: str) -> list[float]:
        return [r.accuracy for r in self.runs[preset]]

    def sentences(self, section: Section, rules: list[Rule]) -> None:
        """Check each line by the first rule whose pattern matches it whole; a line with a
        digit that no rule matches is not verified (and says so)."""
        for line in section.lines:
            for pattern, check in rules:
                found = re.fullmatch(pattern, line)
                if found:
                    check(found)
                    break
            else:
                if re.search(r"\d", line):
                    self.tally.unverified(section.title, line)


def preset_of(label: str) -> str:
    return PRESET.get(label, label)


def label_of(preset: str) -> str:
    return LABEL.get(preset, preset)


def tokens(text: str) -> set[str]:
    """A combination's label as a set of ``key=value`` tokens (their order is presentation)."""
    return set() if text.strip() in ("as it stands", "") else set(text.split())


SHORT = {
    "trainer.stopping": "stopping",
    "trainer.epochs": "ep",
    "trainer.monitor": "monitor",
    "regularizer.scale": "scale",
    "regularizer.l1_half": "l1_half",
    "regularizer.penalize_bias": "penalize_bias",
    "model.init": "init",
}
LONG = {v: k for k, v in SHORT.items()}


def apply(params: dict[str, str], label: str) -> dict[str, str]:
    """A run's parameters with a label's choices applied (``init=normal ep=5``)."""
    out = dict(params)
    for token in tokens(label):
        key, _, value = token.partition("=")
        out[LONG[key]] = value
    return recorded(out)


def recorded(params: dict[str, str]) -> dict[str, str]:
    """Parameters as a run records them: a run trained for a fixed number of epochs has no
    patience and watches nothing, so it records neither."""
    if params.get("trainer.stopping") == "none":
        return {k: v for k, v in params.items() if k not in ("trainer.patience", "trainer.monitor")}
    return params


def label_from(params: dict[str, Any], stands: dict[str, str]) -> set[str]:
    """The tokens of the choices in ``params`` that differ from the row as it stands."""
    return {f"{SHORT[k]}={v}" for k, v in params.items() if k in SHORT and str(v) != stands.get(k)}
