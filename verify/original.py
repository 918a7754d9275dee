"""The original report's numbers, transcribed again for the verifier (not imported from the
product, so a mistyped number in either transcription shows up as a disagreement), and the
rules the product states, written out plainly.

Source: "Implementing a Multi-Layer Neural Network for MNIST Classification", sections 2-6.
"""

from __future__ import annotations

import math

from scipy import stats

# section label -> (preset, test accuracy %, test loss, stop epoch or None)
ROWS = {
    "2 Softmax regression": ("softmax", 92.51, 0.27, 20),
    "4 Momentum (tanh)": ("momentum", 97.45, 0.08, 31),
    "5.1 L2, lambda 0.01": ("l2", 95.79, 0.155, 5),
    "5.2 L1, lambda 0.01": ("l1", 95.18, 0.1649, None),
    "6.1 Sigmoid": ("sigmoid", 97.43, 0.0823, 27),
    "6.2 ReLU": ("relu", 97.69, 0.0794, 17),
}
PRESET = {label: row[0] for label, row in ROWS.items()}
LABEL = {row[0]: label for label, row in ROWS.items()}

# Table 1 as printed: weight -> (numerical, backprop, absolute difference)
TABLE1 = {
    "Output bias": (-0.001305, -0.001309, 4e-06),
    "Hidden bias": (-9.77e-05, 0.000229, 0.000327),
    "Input to Hidden i": (-6.390e-05, 0.0002208, 0.00028),
    "Input to Hidden ii": (-0.000137, 0.000221, 0.0003585),
    "Hidden to Output i": (-0.0021, -0.00208, 2.08e-05),
    "Hidden to Output ii": (0.0204, 0.02035, 0.000102),
}
TABLE1_BOUND = 1e-4

# The distance to a row: the root mean square of each number's error in tolerances.
ACCURACY_POINTS, LOSS_SHARE, EPOCHS_MIN, EPOCHS_SHARE = 0.5, 0.10, 2, 0.20
NEAR_ZERO = 1e-3  # |w| below this is a zero weight (the sparsity table)
LEVEL = 0.05  # Welch's test


def errors(label: str, accuracy_pct: float, loss: float, stop: float | None) -> dict[str, float]:
    """Each number's error in tolerances (the stop epoch only where the original gives one)."""
    _, acc, their_loss, their_stop = ROWS[label]
    out = {
        "accuracy": abs(accuracy_pct - acc) / ACCURACY_POINTS,
        "loss": abs(loss - their_loss) / (LOSS_SHARE * their_loss),
    }
    if their_stop is not None and stop is not None:
        out["stop epoch"] = abs(stop - their_stop) / max(EPOCHS_MIN, EPOCHS_SHARE * their_stop)
    return out


def distance(label: str, accuracy_pct: float, loss: float, stop: float | None) -> float:
    """The root mean square of the errors: under 1, every number is within its tolerance."""
    e = list(errors(label, accuracy_pct, loss, stop).values())
    return math.sqrt(sum(x * x for x in e) / len(e))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def sd(xs: list[float]) -> float:
    """The sample standard deviation (n - 1), NaN for fewer than two."""
    if len(xs) < 2:
        return math.nan
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def interval(xs: list[float]) -> tuple[float, float]:
    """The 95% prediction interval of one new run: mean +- t(0.975, n-1) sd sqrt(1 + 1/n)."""
    n = len(xs)
    half = stats.t.ppf(0.975, n - 1) * sd(xs) * math.sqrt(1 + 1 / n)
    return mean(xs) - half, mean(xs) + half


def verdict(xs: list[float], theirs: float) -> str:
    if len(xs) < 2:
        return "no verdict"
    low, high = interval(xs)
    if low <= theirs <= high:
        return "within the seed spread"
    return "better" if mean(xs) > theirs else "worse"


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of Welch's t-test, from its formula (Welch-Satterthwaite degrees of freedom)."""
    va, vb = sd(a) ** 2 / len(a), sd(b) ** 2 / len(b)
    if va + vb == 0:
        return 0.0 if mean(a) != mean(b) else 1.0
    t = (mean(a) - mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return float(2 * stats.t.sf(abs(t), df))


def welch_verdict(a: list[float], b: list[float]) -> str:
    if len(a) < 2 or len(b) < 2:
        return "too few runs"
    if welch_p(a, b) < LEVEL:
        return "better" if mean(a) > mean(b) else "worse"
    return "no clear difference"
