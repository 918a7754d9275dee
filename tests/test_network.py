"""The network's layout, initialisation, forward pass and dtypes against hand computations
(backprop itself is checked against central differences in test_gradcheck)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.layers import softmax_cross_entropy, softmax_cross_entropy_backward
from pipeline.network import Network, init_weights


@pytest.mark.parametrize(
    ("kind", "std"),
    [
        ("glorot", np.sqrt(2.0 / (300 + 200))),
        ("he", np.sqrt(2.0 / 300)),
        ("normal", 0.01),
        ("uniform", 1.0 / np.sqrt(300) / np.sqrt(3)),  # U(+-b) has sd b / sqrt(3)
    ],
)
def test_initial_weights_have_the_documented_spread(kind: str, std: float) -> None:
    w = init_weights(kind, np.random.default_rng(0), 300, 200)
    assert w.shape == (300, 200)
    assert w.std() == pytest.approx(std, rel=0.01) and abs(w.mean()) < 0.01 * std * 3
    if kind == "uniform":
        assert np.abs(w).max() <= 1.0 / np.sqrt(300)


def test_zeros_init_and_zero_biases() -> None:
    net = Network([4, 3, 2], "tanh", "glorot", np.random.default_rng(0), "float32")
    assert not net.theta[net.n_weights :].any()  # biases start at zero
    assert net.theta[: net.n_weights].all()
    zero = Network([4, 2], "tanh", "zeros", np.random.default_rng(0), "float32")
    assert not zero.theta.any()


def test_parameters_are_views_of_one_flat_vector_weights_first() -> None:
    net = Network([3, 4, 2], "relu", "glorot", np.random.default_rng(0), "float64")
    assert net.n_weights == 3 * 4 + 4 * 2 and net.theta.size == net.n_weights + 4 + 2
    assert [w.shape for w in net.weights] == [(3, 4), (4, 2)]
    assert [b.shape for b in net.biases] == [(4,), (2,)]
    net.theta[:] = np.arange(net.theta.size)
    assert net.weights[1][0, 0] == 12 and net.biases[0][0] == 20 and net.biases[1][1] == 25
    net.grad[:] = -np.arange(net.grad.size)
    assert net.dweights[1][0, 0] == -12 and net.dbiases[1][1] == -25
    assert net.theta.dtype == net.grad.dtype == np.float64


@pytest.mark.parametrize(
    ("activation", "f"),
    [
        ("tanh", np.tanh),
        ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
        ("relu", lambda z: np.maximum(z, 0)),
    ],
)
def test_forward_is_the_hand_computed_network(activation: str, f) -> None:
    rng = np.random.default_rng(1)
    net = Network([3, 4, 2], activation, "glorot", rng, "float64")
    net.biases[0][:] = [0.1, -0.2, 0.3, -0.4]
    net.biases[1][:] = [0.5, -0.5]
    x = rng.standard_normal((5, 3))
    hidden = f(x @ net.weights[0] + net.biases[0])
    expected = hidden @ net.weights[1] + net.biases[1]
    ws = net.workspace(8)
    np.testing.assert_allclose(net.forward(x, ws), expected, rtol=1e-12)
    np.testing.assert_allclose(ws.acts[0][:5], hidden, rtol=1e-12)  # cached for backward


def test_sigmoid_never_overflows() -> None:
    net = Network([1, 1, 1], "sigmoid", "glorot", np.random.default_rng(0), "float64")
    net.weights[0][:] = 1.0
    ws = net.workspace(3)
    with np.errstate(all="raise"):
        net.forward(np.array([[-1000.0], [0.0], [1000.0]]), ws)
    np.testing.assert_allclose(ws.acts[0][:, 0], [0.0, 0.5, 1.0])


def test_workspaces_are_made_once_per_row_count_in_the_network_dtype() -> None:
    net = Network([3, 4, 2], "tanh", "glorot", np.random.default_rng(0), "float32")
    ws = net.workspace(5)
    assert net.workspace(5) is ws and net.workspace(6) is not ws
    assert ws.rows == 5
    assert [a.shape for a in ws.acts] == [(5, 4), (5, 2)]
    assert [d.shape for d in ws.deltas] == [(5, 4)] == [s.shape for s in ws.scratch]
    assert {a.dtype for a in [*ws.acts, *ws.deltas, *ws.scratch]} == {np.dtype(np.float32)}


def test_softmax_cross_entropy_and_its_scaled_gradient() -> None:
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    t = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    p0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    loss = softmax_cross_entropy(z, t)
    assert loss == pytest.approx(-np.log(p0[2]) + 1000.0)
    np.testing.assert_allclose(z, [p0, [1.0, 0.0, 0.0]], atol=1e-300)
    delta = softmax_cross_entropy_backward(z, t, 3.0)
    np.testing.assert_allclose(delta, 3.0 * (np.array([p0, [1.0, 0.0, 0.0]]) - t) / 2)


def test_backward_scales_every_gradient_and_skips_the_data() -> None:
    rng = np.random.default_rng(2)
    net = Network([3, 4, 2], "tanh", "glorot", rng, "float64")
    x, t = rng.standard_normal((6, 3)), np.eye(2)[[0, 1, 1, 0, 0, 1]]
    grads = []
    for scale in (1.0, 0.25):
        ws = net.workspace(6)
        _, probs = net.loss(x, t, ws)
        net.backward(x, t, probs, ws, scale)
        grads.append(net.grad.copy())
    assert np.abs(grads[0]).min() > 0
    np.testing.assert_allclose(grads[1], 0.25 * grads[0], rtol=1e-12)
