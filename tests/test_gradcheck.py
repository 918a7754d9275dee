"""Backpropagation against central differences: the report's Table 1 and every parameter."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import RegularizerConfig
from pipeline.gradcheck import (
    PENALTY_VARIANTS,
    backprop_gradient,
    full_check,
    numeric_gradient,
    objective,
    relative_error,
    report_table,
)
from pipeline.network import Network
from pipeline.optim import Penalty


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("penalty", list(PENALTY_VARIANTS))
def test_every_parameter(activation: str, penalty: str) -> None:
    rel, worst = full_check([12, 7, 5, 4], activation, penalty, seed=1)
    assert rel < 1e-6
    assert worst < 1e-7


def test_softmax_regression_every_parameter() -> None:
    rel, _ = full_check([9, 4], "tanh", "l2", seed=2)
    assert rel < 1e-6


def test_check_catches_a_wrong_gradient() -> None:
    """The checker itself can fail: a backprop off by a factor on one layer is caught."""
    rng = np.random.default_rng(0)
    net = Network([6, 5, 3], "tanh", "glorot", rng, "float64")
    x, t = rng.standard_normal((4, 6)), np.eye(3)[[0, 1, 2, 0]]
    penalty = Penalty(RegularizerConfig(), net.n_weights, net.theta.size, net.dtype)
    analytic = backprop_gradient(net, x, t, penalty)
    analytic[: 6 * 5] *= 1.01
    numeric = numeric_gradient(lambda: objective(net, x, t, penalty), net.theta, 1e-6)
    assert relative_error(analytic, numeric) > 1e-4


def test_report_table1_within_bound(small_mnist) -> None:
    net = Network([784, 128, 10], "tanh", "glorot", np.random.default_rng(0), "float64")
    x = small_mnist.train.x[:1].astype(np.float64)
    rows = report_table(net, x, small_mnist.train.t[:1].astype(np.float64))
    assert [r["weight"] for r in rows][:2] == ["Output bias", "Hidden bias"]
    assert all(r["abs_difference"] < 1e-4 for r in rows)
    assert all(abs(r["backprop"]) > 1e-6 for r in rows)  # no row passes by being zero
    # the report's own table, as printed, breaks its bound in four rows; ours in none
    assert [r["report_abs_difference"] for r in rows] == [
        4e-06,
        0.000327,
        0.00028,
        0.0003585,
        2.08e-05,
        0.000102,
    ]
