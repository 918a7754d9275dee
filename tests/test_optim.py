"""Update rules and penalties against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import RegularizerConfig
from pipeline.optim import SGD, Momentum, Penalty


def test_momentum_matches_report_equation_5() -> None:
    # dw_1 = 0.9*0 + 0.1*0.5*[1, -2] = [0.05, -0.1];        w = [1, 1] - dw_1 = [0.95, 1.1]
    # dw_2 = 0.9*[0.05, -0.1] + 0.1*0.5*[2, 2] = [0.145, 0.01]; w = [0.805, 1.09]
    opt = Momentum(lr=0.5, gamma=0.9, size=2, dtype=np.float64)
    assert opt.grad_scale == pytest.approx(0.05)  # (1 - gamma) lr, folded into backprop
    w = np.array([1.0, 1.0])
    opt.step(w, opt.grad_scale * np.array([1.0, -2.0]))
    np.testing.assert_allclose(w, [0.95, 1.1])
    opt.step(w, opt.grad_scale * np.array([2.0, 2.0]))
    np.testing.assert_allclose(opt.velocity, [0.145, 0.01])
    np.testing.assert_allclose(w, [0.805, 1.09])


def test_sgd() -> None:
    w = np.array([1.0, -1.0])
    opt = SGD(0.1)
    opt.step(w, opt.grad_scale * np.array([2.0, 3.0]))
    np.testing.assert_allclose(w, [0.8, -1.3])


@pytest.mark.parametrize(
    ("kind", "penalize_bias", "grad", "loss"),
    [
        ("l2", False, [0.1 * 2, 0.1 * -3, 0], 0.05 * 13),  # lam * w on weights only
        ("l1", False, [0.1, -0.1, 0], 0.1 * 5),  # lam * sign(w)
        ("l2", True, [0.2, -0.3, 0.4], 0.05 * 29),
        ("none", False, [0, 0, 0], 0.0),
    ],
)
def test_penalties(kind: str, penalize_bias: bool, grad: list, loss: float) -> None:
    theta = np.array([2.0, -3.0, 4.0])  # two weights, then one bias
    penalty = Penalty(RegularizerConfig(kind, 0.1, penalize_bias), 2, 3, theta.dtype)
    g = np.zeros(3)
    if penalty.active:
        penalty.add_grad(theta, g, scale=2.0, rows=5)
    np.testing.assert_allclose(g, 2.0 * np.array(grad))
    assert penalty.loss(theta, rows=5) == pytest.approx(loss)


@pytest.mark.parametrize(
    ("options", "grad", "loss"),
    [
        ({"kind": "l1", "l1_half": True}, [0.05, -0.05, 0], 0.05 * 5),  # eq. 7 as written
        ({"kind": "l2", "l1_half": True}, [0.2, -0.3, 0], 0.05 * 13),  # only L1 has the half
        ({"kind": "l1", "scale": "sum"}, [0.1 / 4, -0.1 / 4, 0], 0.1 / 4 * 5),  # lam / B
        ({"kind": "l2", "scale": "sum"}, [0.2 / 4, -0.3 / 4, 0], 0.05 / 4 * 13),
    ],
)
def test_penalty_variants(options: dict, grad: list, loss: float) -> None:
    theta = np.array([2.0, -3.0, 4.0])
    penalty = Penalty(RegularizerConfig(lam=0.1, **options), 2, 3, theta.dtype)
    g = np.ones(3)  # the penalty adds to what is there
    penalty.add_grad(theta, g, scale=3.0, rows=4)
    np.testing.assert_allclose(g, 1 + 3.0 * np.array(grad))
    assert penalty.loss(theta, rows=4) == pytest.approx(loss)


def test_momentum_keeps_its_velocity_in_the_parameters_dtype() -> None:
    from pipeline.config import OptimizerConfig
    from pipeline.optim import make_optimizer

    momentum = make_optimizer(OptimizerConfig("momentum", 0.5, 0.8), 3, np.dtype(np.float32))
    assert momentum.velocity.dtype == np.float32 and momentum.velocity.shape == (3,)
    assert (momentum.gamma, momentum.grad_scale) == (0.8, pytest.approx(0.1))
