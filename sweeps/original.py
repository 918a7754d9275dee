"""The original report's numbers, and the rules that compare ours with them.

Everything that says "reproduced" or "better" in the generated report comes from here, so the
rules are stated once, where they are used:

- ``verdict``: the original's accuracy is one training run, a draw from its own seed
  distribution. It is "within the seed spread" when it lies inside the 95% prediction interval
  of one new run from ours: mean +- t(0.975, n-1) * sd * sqrt(1 + 1/n). With one seed there
  is no spread, and no verdict.
- ``welch``: two groups of runs (tuned against hand-picked) differ when Welch's t-test says
  p < 0.05; with fewer than two runs on a side it cannot say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

# The report's results (its sections 2, 4, 5 and 6): test accuracy, test loss, stop epoch, and
# the experiment a row says it was trained like, in the report's words (L1 gives no stop epoch).
ROWS = pd.DataFrame(
    [
        ("softmax", "2 Softmax regression", 0.9251, 0.27, 20, None, None),
        ("momentum", "4 Momentum (tanh)", 0.9745, 0.08, 31, None, None),
        ("l2", "5.1 L2, lambda 0.01", 0.9579, 0.155, 5, None, None),
        (
            "l1",
            "5.2 L1, lambda 0.01",
            0.9518,
            0.1649,
            None,
            "l2",
            "everything else the same to compare with L2",
        ),
        ("sigmoid", "6.1 Sigmoid", 0.9743, 0.0823, 27, None, None),
        ("relu", "6.2 ReLU", 0.9769, 0.0794, 17, None, None),
    ],
    columns=["preset", "section", "accuracy", "loss", "stop_epoch", "like", "like_quote"],
).set_index("preset")
ACTIVATION_PRESETS = {"sigmoid": "sigmoid", "tanh": "momentum", "relu": "relu"}
REGULARIZER_PRESETS = {"none": "momentum", "l1": "l1", "l2": "l2"}
WITHIN, BETTER, WORSE, NO_VERDICT = "within the seed spread", "better", "worse", "no verdict"


def prediction_halfwidth(sd: float, n: int) -> float:
    """Half-width of the 95% prediction interval of one new run, in the units of ``sd``."""
    return float(stats.t.ppf(0.975, n - 1) * sd * math.sqrt(1 + 1 / n)) if n > 1 else math.nan


def verdict(ours: np.ndarray, theirs: float) -> str:
    """Where the original's number stands against our runs of the same experiment."""
    if len(ours) < 2:
        return NO_VERDICT
    diff = float(np.mean(ours)) - theirs
    if abs(diff) <= prediction_halfwidth(float(np.std(ours, ddof=1)), len(ours)):
        return WITHIN
    return BETTER if diff > 0 else WORSE


@dataclass(frozen=True)
class Welch:
    diff: float  # mean(a) - mean(b)
    p: float  # two-sided; NaN when there are too few runs to say
    verdict: str  # "better", "worse", "no clear difference", "too few runs"


def welch(a: np.ndarray, b: np.ndarray) -> Welch:
    """Welch's t-test of a against b (unequal variances), at the 5% level."""
    diff = float(np.mean(a) - np.mean(b)) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2:
        return Welch(diff, math.nan, "too few runs")
    if np.std(a, ddof=1) == 0 and np.std(b, ddof=1) == 0:
        p = 0.0 if diff else 1.0
    else:
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    if p < 0.05:
        return Welch(diff, p, "better" if diff > 0 else "worse")
    return Welch(diff, p, "no clear difference")


def _epoch(value: Any) -> int | None:
    return None if pd.isna(value) else int(value)


def borrowed_length(preset: str) -> str:
    """Why a row without a stop epoch is tried at another's length ("" when it is not)."""
    row = ROWS.loc[preset] if preset in ROWS.index else None
    if row is None or not pd.isna(row["stop_epoch"]) or not isinstance(row["like"], str):
        return ""
    epochs = int(ROWS.loc[row["like"], "stop_epoch"])
    like = ROWS.loc[row["like"], "section"].split(",")[0]
    return (
        f"The original gives no stop epoch for {row['section'].split(',')[0]} but trains it with "
        f'"{row["like_quote"]}": its fixed-length runs borrow {like}\'s {epochs} epochs.'
    )


@dataclass(frozen=True)
class Target:
    """One row of the original, and how far a run is from it.

    The distance is the root mean square of each number's error over its tolerance:
    accuracy within 0.5 point, loss within 10% of the original's, stop epoch within
    max(2, 20%) epochs (when the original gives one). Under 1, every number is within its
    tolerance: the row is reproduced.
    """

    accuracy: float  # a fraction, like ours
    loss: float
    stop_epoch: int | None
    # when the original gives no stop epoch: that of the experiment it says it trained like
    like_epochs: int | None = None

    @classmethod
    def of(cls, preset: str) -> Target:
        row = ROWS.loc[preset]
        like = _epoch(ROWS.loc[row["like"], "stop_epoch"]) if isinstance(row["like"], str) else None
        return cls(float(row["accuracy"]), float(row["loss"]), _epoch(row["stop_epoch"]), like)

    @property
    def fixed_epochs(self) -> int | None:
        """How long a fixed-length hypothesis trains (never part of the distance)."""
        return self.stop_epoch or self.like_epochs

    def errors(self, accuracy: float, loss: float, stop_epoch: float | None) -> dict[str, float]:
        """Each number's error in tolerances (stop epoch only if the original gives one)."""
        out = {
            "accuracy": abs(accuracy - self.accuracy) * 100 / 0.5,
            "loss": abs(loss - self.loss) / (0.1 * self.loss),
        }
        if self.stop_epoch is not None and stop_epoch is not None:
            out["stop epoch"] = abs(stop_epoch - self.stop_epoch) / max(2, 0.2 * self.stop_epoch)
        return out

    def distance(self, accuracy: float, loss: float, stop_epoch: float | None) -> float:
        errs = list(self.errors(accuracy, loss, stop_epoch).values())
        return float(np.sqrt(np.mean(np.square(errs))))

    def lower_bound(self, epoch: int) -> float:
        """A run still training at ``epoch`` ends at least this far away: it stops at ``epoch``
        or later (exact, but only biting once past the original's stop epoch)."""
        if self.stop_epoch is None or epoch <= self.stop_epoch:
            return 0.0
        late = (epoch - self.stop_epoch) / max(2, 0.2 * self.stop_epoch)
        return float(late / np.sqrt(3))

    def now(self, epoch: int, val_accuracy: float, val_loss: float) -> float:
        """The distance a run's validation numbers give at ``epoch`` (stopping there or, if
        before the original's stop epoch, as the original did)."""
        stop = None if self.stop_epoch is None else max(epoch, self.stop_epoch)
        return self.distance(val_accuracy, val_loss, stop)
