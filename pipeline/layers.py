"""Layer math as forward/backward pairs, written in place into buffers the caller owns.

Every function writes into an ``out`` array instead of returning a new one: the training loop
calls them tens of thousands of times per run, and allocation would cost more than the math.
The cache a backward pass consumes is simply the forward pass's outputs (see ``network.py``).
"""

from __future__ import annotations

import numpy as np


def _sigmoid(z: np.ndarray) -> None:
    # 1/(1+exp(-z)) == 0.5*tanh(z/2)+0.5, which never overflows for large negative z.
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5


def _tanh(z: np.ndarray) -> None:
    np.tanh(z, out=z)


def _relu(z: np.ndarray) -> None:
    np.maximum(z, 0, out=z)


# Derivatives in terms of the activation's output y (the cached forward value), applied to
# delta in place: cheaper than recomputing from the pre-activation. ``tmp`` is scratch space.
def _sigmoid_grad(y: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    np.subtract(1, y, out=tmp)  # y' = y (1 - y)
    tmp *= y
    delta *= tmp


def _tanh_grad(y: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    np.square(y, out=tmp)  # y' = 1 - y^2, so delta * y' = delta - delta * y^2
    tmp *= delta
    delta -= tmp


def _relu_grad(y: np.ndarray, delta: np.ndarray, tmp: np.ndarray) -> None:
    np.sign(y, out=tmp)  # y >= 0, so sign(y) is exactly the 0/1 step
    delta *= tmp


ACTIVATIONS = {"sigmoid": _sigmoid, "tanh": _tanh, "relu": _relu}
DERIVATIVES = {"sigmoid": _sigmoid_grad, "tanh": _tanh_grad, "relu": _relu_grad}


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """a = x w + b (report eq. 2, bias kept apart instead of augmenting x)."""
    np.matmul(x, w, out=out)
    out += b
    return out


def dense_backward(
    delta: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    dw: np.ndarray,
    db: np.ndarray,
    dx: np.ndarray | None,
) -> None:
    """Gradients of the layer's weights and bias, and of its input unless it is the data."""
    np.matmul(x.T, delta, out=dw)
    np.sum(delta, axis=0, out=db)
    if dx is not None:
        np.matmul(delta, w.T, out=dx)


def softmax_cross_entropy(z: np.ndarray, t: np.ndarray) -> float:
    """Turn logits ``z`` into softmax probabilities in place; return the summed cross-entropy.

    Log-sum-exp form (report eqs. 1 and 3): with z shifted by its row maximum,
    -ln y_k = ln sum_k' exp(z_k') - z_k, so no probability is ever logged and nothing overflows.
    """
    z -= z.max(axis=1, keepdims=True)
    target_logits = np.vdot(t, z)
    np.exp(z, out=z)
    sums = z.sum(axis=1, keepdims=True)
    z /= sums
    return float(np.log(sums).sum() - target_logits)


def softmax_cross_entropy_backward(probs: np.ndarray, t: np.ndarray, scale: float) -> np.ndarray:
    """scale * d(mean loss)/dz = scale * (y - t) / B (report eq. 4, batch-averaged), in place.

    Backprop is linear in this delta, so ``scale`` (an optimizer's step size) reaches every
    parameter gradient at no cost, sparing the optimizer a pass over the parameters.
    """
    probs -= t
    probs *= scale / len(probs)
    return probs
