"""Optimizers and penalties: tiny objects acting in place on the flat parameter vector.

An optimizer's ``step`` takes the gradient already multiplied by its ``grad_scale``: backprop
folds that factor in for free (see ``softmax_cross_entropy_backward``), which saves one full
pass over the parameters per step.
"""

from __future__ import annotations

import numpy as np

from pipeline.config import OptimizerConfig, RegularizerConfig


class SGD:
    """w <- w - lr * grad (the report's Algorithm 1, line 8)."""

    def __init__(self, lr: float) -> None:
        self.grad_scale = lr

    def step(self, theta: np.ndarray, scaled_grad: np.ndarray) -> None:
        theta -= scaled_grad


class Momentum:
    """The report's eq. 5: dw_t = gamma * dw_{t-1} + (1 - gamma) * lr * grad; w <- w - dw_t.

    This is an exponential moving average of the step, not PyTorch's heavy-ball form
    (v = gamma v + grad): with the same lr the step is (1 - gamma) = 10x smaller at gamma 0.9,
    which is why the report's learning rates look large.
    """

    def __init__(self, lr: float, gamma: float, size: int, dtype: np.dtype) -> None:
        self.gamma = gamma
        self.grad_scale = (1.0 - gamma) * lr
        self.velocity = np.zeros(size, dtype)

    def step(self, theta: np.ndarray, scaled_grad: np.ndarray) -> None:
        v = self.velocity
        v *= self.gamma
        v += scaled_grad
        theta -= v


def make_optimizer(cfg: OptimizerConfig, size: int, dtype: np.dtype) -> SGD | Momentum:
    if cfg.name == "sgd":
        return SGD(cfg.lr)
    return Momentum(cfg.lr, cfg.gamma, size, dtype)


class Penalty:
    """L2 adds lam * w to the gradient (eq. 6), L1 lam * sign(w) (eq. 7).

    The matching loss terms are lam/2 * sum(w^2) and lam * sum(|w|). The report writes lam/2
    in front of |w| but uses the gradient lam * sign(w); ``l1_half`` takes eq. 7 as written
    instead: lam/2 * sum(|w|), gradient lam/2 * sign(w). With ``scale="sum"`` the penalty
    joins the batch's *summed* loss before the division by the batch size B, as much
    hand-written code does, so each step feels lam / B instead of lam.
    """

    def __init__(self, cfg: RegularizerConfig, n_weights: int, size: int, dtype: np.dtype) -> None:
        self.kind = cfg.kind
        self.lam = cfg.lam * (0.5 if cfg.kind == "l1" and cfg.l1_half else 1.0)
        self.per_row = cfg.scale == "sum"
        self.n = size if cfg.penalize_bias else n_weights  # weights are theta's prefix
        self._tmp = np.empty(self.n, dtype)

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.lam > 0

    def strength(self, rows: int) -> float:
        """The lambda one step of ``rows`` examples feels."""
        return self.lam / rows if self.per_row else self.lam

    def loss(self, theta: np.ndarray, rows: int) -> float:
        """The penalty term of the objective of a batch of ``rows`` examples."""
        w = theta[: self.n]
        if self.kind == "l2":
            return 0.5 * self.strength(rows) * float(np.vdot(w, w))
        if self.kind == "l1":
            return self.strength(rows) * float(np.abs(w).sum())
        return 0.0

    def add_grad(self, theta: np.ndarray, grad: np.ndarray, scale: float, rows: int) -> None:
        """grad += scale * d(penalty)/d(theta), ``scale`` as in the gradient it joins."""
        tmp = self._tmp
        factor = self.strength(rows) * scale
        if self.kind == "l2":
            np.multiply(theta[: self.n], factor, out=tmp)
        else:
            np.sign(theta[: self.n], out=tmp)
            tmp *= factor
        grad[: self.n] += tmp
