"""Every comparison the verifier makes, and the ones that disagree.

A number the report prints is compared with the one derived from the records at the precision
it is printed with: "97.42" agrees with anything that rounds to it (within half a unit of its
last digit), "1.5e-07" with anything within half a unit of its mantissa's last digit. A word
the report prints (a verdict, a choice) must be the derived word exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
NUM = r"[-+]?[\d.]+(?:e[-+]?\d+)?"  # a printed number inside a sentence's pattern
MISSING = "-"


def tolerance(shown: str) -> float:
    """Half a unit of the last digit ``shown`` prints."""
    mantissa, _, exponent = shown.lower().lstrip("+-").partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


@dataclass
class Tally:
    checked: int = 0
    disagreements: list[str] = field(default_factory=list)

    def number(self, where: str, shown: str, derived: float | None) -> None:
        """``shown`` (as printed) against ``derived``; "-" stands for no number."""
        self.checked += 1
        shown = shown.strip().rstrip("%")
        if derived is None or (isinstance(derived, float) and math.isnan(derived)):
            if shown != MISSING:
                self.disagree(where, shown, "no number")
            return
        if not NUMBER.fullmatch(shown):
            self.disagree(where, shown, f"{derived:.6g}")
            return
        slack = tolerance(shown) * (1 + 1e-9) + 1e-12 * abs(derived)
        if abs(float(shown) - derived) > slack:
            self.disagree(where, shown, f"{derived:.6g}")

    def numbers(self, where: str, shown: str, derived: list[float], sep: str = "/") -> None:
        """A list printed as ``97.40 / 97.43 / 97.44``."""
        if shown.strip() == MISSING and all(math.isnan(v) for v in derived):
            self.checked += 1  # no numbers, as none can be derived (one seed has no interval)
            return
        parts = [p for p in shown.split(sep) if p.strip()]
        if len(parts) != len(derived):
            self.checked += 1
            self.disagree(where, shown, f"{len(derived)} values")
            return
        for i, (part, value) in enumerate(zip(parts, derived)):
            self.number(f"{where} [{i}]", part, value)

    def word(self, where: str, shown: str, derived: str) -> None:
        self.checked += 1
        if shown.strip() != derived:
            self.disagree(where, shown, derived)

    def disagree(self, where: str, shown: str, derived: str) -> None:
        self.disagreements.append(
            f"{where}: the report says {shown!r}, the records say {derived!r}"
        )

    def unverified(self, where: str, text: str) -> None:
        """A line or table the verifier has no rule for: its numbers cannot be vouched for."""
        self.checked += 1
        self.disagreements.append(f"{where}: no rule verifies {text[:120]!r}")
