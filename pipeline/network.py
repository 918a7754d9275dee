"""A fully connected network whose parameters live in one flat vector.

All weight matrices come first in ``theta``, then all biases; ``weights[i]`` and ``biases[i]``
are views into it, and ``grad`` has the same layout. So an optimizer step, a penalty, a
best-model snapshot or a numeric gradient check is one operation on one vector, not one per
layer, and "weights only" (the penalised part) is the contiguous prefix ``theta[:n_weights]``.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from pipeline.layers import (
    ACTIVATIONS,
    DERIVATIVES,
    dense_backward,
    dense_forward,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
)


def init_weights(kind: str, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    """Initial weights of a (fan_in, fan_out) layer; biases start at zero.

    The report does not say which it used. ``glorot`` (Glorot & Bengio 2010) keeps tanh and
    sigmoid units out of saturation, ``he`` (He et al. 2015) suits ReLU, ``normal``
    N(0, 0.01^2) and ``uniform`` U(+-1/sqrt(fan_in)) are what hand-written code uses most, and
    ``zeros`` is the report's Algorithm 1 (w <- 0), valid only for softmax regression.
    """
    shape = (fan_in, fan_out)
    if kind == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape)
    std = {
        "glorot": np.sqrt(2.0 / (fan_in + fan_out)),
        "he": np.sqrt(2.0 / fan_in),
        "normal": 0.01,
        "zeros": 0.0,
    }[kind]
    return rng.standard_normal(shape) * std


class Workspace:
    """Preallocated forward outputs (the backward pass's cache), deltas and scratch space."""

    def __init__(self, sizes: list[int], rows: int, dtype: np.dtype) -> None:
        self.rows = rows
        self.acts = [np.empty((rows, n), dtype) for n in sizes[1:]]
        self.deltas = [np.empty((rows, n), dtype) for n in sizes[1:-1]]
        self.scratch = [np.empty((rows, n), dtype) for n in sizes[1:-1]]


class Network:
    """``sizes = [784, 128, 10]`` is the report's network; ``[784, 10]`` is softmax regression."""

    def __init__(
        self, sizes: list[int], activation: str, init: str, rng: np.random.Generator, dtype: str
    ) -> None:
        self.sizes = sizes
        self.activation = activation
        self.dtype = np.dtype(dtype)
        shapes = list(pairwise(sizes))
        self.n_weights = sum(a * b for a, b in shapes)
        self.theta = np.zeros(self.n_weights + sum(sizes[1:]), self.dtype)
        self.grad = np.zeros_like(self.theta)
        self.weights, self.dweights = self._views(shapes, 0)
        self.biases, self.dbiases = self._views([(n,) for n in sizes[1:]], self.n_weights)
        for w, (fan_in, fan_out) in zip(self.weights, shapes):
            w[...] = init_weights(init, rng, fan_in, fan_out)
        self._act = ACTIVATIONS[activation]
        self._act_grad = DERIVATIVES[activation]
        self._spaces: dict[int, Workspace] = {}

    def _views(self, shapes: list[tuple[int, ...]], start: int) -> tuple[list, list]:
        params, grads = [], []
        for shape in shapes:
            end = start + int(np.prod(shape))
            params.append(self.theta[start:end].reshape(shape))
            grads.append(self.grad[start:end].reshape(shape))
            start = end
        return params, grads

    def workspace(self, rows: int) -> Workspace:
        """One workspace per batch size, made once and reused every step."""
        if rows not in self._spaces:
            self._spaces[rows] = Workspace(self.sizes, rows, self.dtype)
        return self._spaces[rows]

    def forward(self, x: np.ndarray, ws: Workspace) -> np.ndarray:
        """Logits of ``x`` (n <= ws.rows) into ``ws.acts[-1]``; hidden outputs stay cached."""
        n = len(x)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out = dense_forward(x, w, b, ws.acts[i][:n])
            if i < last:
                self._act(out)
            x = out
        return x

    def loss(self, x: np.ndarray, t: np.ndarray, ws: Workspace) -> tuple[float, np.ndarray]:
        """Summed cross-entropy and the softmax probabilities (left in the workspace)."""
        probs = self.forward(x, ws)
        return softmax_cross_entropy(probs, t), probs

    def backward(
        self, x: np.ndarray, t: np.ndarray, probs: np.ndarray, ws: Workspace, scale: float = 1.0
    ) -> None:
        """Fill ``grad`` with scale * d(mean cross-entropy)/d(theta), from the cached forward."""
        n = len(x)
        delta = softmax_cross_entropy_backward(probs, t, scale)
        for i in range(len(self.weights) - 1, -1, -1):
            below = ws.acts[i - 1][:n] if i else x
            dx = ws.deltas[i - 1][:n] if i else None  # no gradient for the data itself
            dense_backward(delta, below, self.weights[i], self.dweights[i], self.dbiases[i], dx)
            if dx is not None:
                self._act_grad(below, dx, ws.scratch[i - 1][:n])
                delta = dx
