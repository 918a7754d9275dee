"""Property-based tests (hypothesis): general rules checked over generated cases against
plain reference implementations, not over the few cases a person thinks of.

Every test is derandomized (the same examples on every run) and bounded, and has no deadline:
nothing here depends on timing.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import fit
from pipeline.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RegularizerConfig,
    TrackingConfig,
    TrainConfig,
    TrainerConfig,
    validate,
)
from pipeline.data import Arrays
from pipeline.network import Network

BOUNDED = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def reference_stop(losses: list[float], rule: str, patience: int) -> tuple[int, int]:
    """(the epoch training stops after, the epoch whose model is kept), from the rules as the
    README states them: ``rises`` stops once the loss rose ``patience`` epochs in a row,
    ``patience`` once ``patience`` epochs passed without a new best (a strictly lower loss),
    ``none`` never; the first two keep the best epoch, ``none`` the last."""
    for stop in range(1, len(losses) + 1):
        seen = losses[:stop]
        best = 1 + seen.index(min(seen))
        recent = seen[-patience - 1 :]
        rose = len(recent) == patience + 1 and all(a < b for a, b in pairwise(recent))
        if (rule == "rises" and rose) or (rule == "patience" and stop - best >= patience):
            return stop, best
    return len(losses), (len(losses) if rule == "none" else 1 + losses.index(min(losses)))


# few distinct values, so that ties, plateaus and runs of rises are common
loss_sequences = st.lists(st.integers(0, 4).map(lambda k: 0.1 * k + 0.05), min_size=1, max_size=12)
rules = st.sampled_from(["rises", "patience", "none"])


@BOUNDED
@given(losses=loss_sequences, rule=rules, patience=st.integers(1, 4))
def test_early_stopping_matches_the_reference(losses: list, rule: str, patience: int) -> None:
    stopper = fit.EarlyStopping(rule, patience)
    stop = next((e for e, v in enumerate(losses, 1) if stopper.update(e, v)[1]), len(losses))
    expected_stop, expected_kept = reference_stop(losses, rule, patience)
    assert stop == expected_stop
    if rule != "none":
        assert stopper.best_epoch == expected_kept
        assert stopper.best_loss == min(losses[:stop])


@BOUNDED
@given(losses=loss_sequences, rule=rules, patience=st.integers(1, 4))
def test_fit_stops_and_restores_as_the_reference(losses: list, rule: str, patience: int) -> None:
    """The whole loop on tiny arrays with the validation losses scripted: it trains as many
    epochs as the reference says and leaves the kept epoch's weights in the network."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    data = Arrays(x, np.eye(2)[[0, 1, 1, 0, 1, 0]], np.array([0, 1, 1, 0, 1, 0]))
    net = Network([3, 2], "tanh", "glorot", rng, "float64")
    cfg = TrainConfig(
        optimizer=OptimizerConfig("sgd", lr=0.5),
        trainer=TrainerConfig(
            epochs=len(losses), batch_size=2, stopping=rule, patience=patience, dtype="float64"
        ),
        tracking=TrackingConfig(enabled=False),
    )
    script = iter(losses)
    after: dict[int, np.ndarray] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit, "evaluate", lambda net, split: (next(script), 0.5))
        history, kept, _ = fit.fit(
            net, data, data, cfg, rng, [lambda e, m: after.__setitem__(e, net.theta.copy())]
        )
    assert (len(history), kept) == reference_stop(losses, rule, patience)
    np.testing.assert_array_equal(net.theta, after[kept])


def one_shot(net: Network, data: Arrays) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the whole split at once, in plain NumPy."""
    h = data.x
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        h = h @ w + b
        if i < len(net.weights) - 1:
            h = np.tanh(h)
    logp = h - h.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    loss = -float((data.t * logp).sum()) / len(data)
    return loss, float(np.mean(h.argmax(axis=1) == data.y))


@BOUNDED
@given(rows=st.integers(1, 40), chunk=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_evaluate_in_chunks_equals_one_shot(rows: int, chunk: int, seed: int) -> None:
    """Whatever the split's size against the evaluation chunk (``EVAL_ROWS``, 2,000 rows in
    use: smaller, equal, a multiple, or not), the chunked sums divided by the row count are
    the one-shot mean; ``predict`` gives the same classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, rows)
    data = Arrays(rng.standard_normal((rows, 4)), np.eye(3)[y], y)
    net = Network([4, 5, 3], "tanh", "glorot", rng, "float64")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit, "EVAL_ROWS", chunk)
        loss, accuracy = fit.evaluate(net, data)
        predicted = fit.predict(net, data.x)
    expected_loss, expected_accuracy = one_shot(net, data)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert accuracy == pytest.approx(expected_accuracy, rel=1e-12)
    assert np.mean(predicted == y) == pytest.approx(expected_accuracy, rel=1e-12)


# The documented domain of every checked key: (a strategy of values of its type, whether a
# value is allowed). Values outside must be refused naming the key, values inside accepted.
numbers = st.floats(allow_nan=True, allow_infinity=True)
names = st.text(max_size=8) | st.sampled_from(
    ["tanh", "relu", "sigmoid", "glorot", "he", "normal", "uniform", "sgd", "momentum", "none",
     "l1", "l2", "mean", "sum", "rises", "patience", "val_loss", "val_objective", "float32",
     "float64", "per_image", "train_stats", "zeros"]
)  # fmt: skip
maybe = st.none() | st.integers(-5, 30)
DOMAIN = {
    "model.activation": (names, lambda v: v in ("sigmoid", "tanh", "relu")),
    "model.init": (names, lambda v: v in ("glorot", "he", "normal", "uniform", "zeros")),
    "model.hidden": (st.lists(st.integers(-2, 5), max_size=3), lambda v: all(h >= 1 for h in v)),
    "optimizer.name": (names, lambda v: v in ("sgd", "momentum")),
    "optimizer.lr": (numbers, lambda v: 0 < v < math.inf),
    "optimizer.gamma": (numbers, lambda v: 0 <= v < 1),
    "regularizer.kind": (names, lambda v: v in ("none", "l1", "l2")),
    "regularizer.lam": (numbers, lambda v: 0 <= v < math.inf),
    "regularizer.scale": (names, lambda v: v in ("mean", "sum")),
    "trainer.epochs": (st.integers(-3, 3), lambda v: v >= 1),
    "trainer.batch_size": (st.integers(-3, 3), lambda v: v >= 1),
    "trainer.patience": (st.integers(-3, 3), lambda v: v >= 1),
    "trainer.stopping": (names, lambda v: v in ("rises", "patience", "none")),
    "trainer.monitor": (names, lambda v: v in ("val_loss", "val_objective")),
    "trainer.seed": (st.integers(-3, 3), lambda v: v >= 0),
    "trainer.dtype": (names, lambda v: v in ("float32", "float64")),
    "trainer.threads": (maybe, lambda v: v is None or v >= 1),
    "data.val_fraction": (numbers, lambda v: 0 < v < 1),
    "data.normalize": (names, lambda v: v in ("per_image", "train_stats")),
    "data.max_train": (maybe, lambda v: v is None or v >= 10),
    "data.max_test": (maybe, lambda v: v is None or v >= 1),
    "data.split_seed": (st.integers(-3, 3), lambda v: v >= 0),
    "tracking.experiment": (st.text(" \tab", max_size=3), lambda v: bool(v.strip())),
}


def with_value(cfg: TrainConfig, key: str, value: object) -> TrainConfig:
    section, name = key.split(".")
    return replace(cfg, **{section: replace(getattr(cfg, section), **{name: value})})


@BOUNDED
@given(data=st.data(), key=st.sampled_from(sorted(DOMAIN)))
def test_validation_accepts_exactly_the_documented_values(data, key: str) -> None:
    strategy, allowed = DOMAIN[key]
    value = data.draw(strategy, label=key)
    cfg = with_value(TrainConfig(model=ModelConfig(hidden=[8])), key, value)
    if allowed(value):
        assert validate(cfg) is cfg
        return
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert re.fullmatch(rf"{re.escape(key)}=.+ is invalid: expected .+", str(err.value))
    assert str(err.value).startswith(f"{key}={value!r} is invalid")


@pytest.mark.parametrize(
    ("key", "lowest_allowed", "highest_refused"),
    [
        ("data.max_train", 10, 9),
        ("data.max_test", 1, 0),
        ("trainer.epochs", 1, 0),
        ("trainer.threads", 1, 0),
        ("trainer.seed", 0, -1),
        ("data.split_seed", 0, -1),
        ("optimizer.gamma", 0.0, -1e-9),
        ("regularizer.lam", 0.0, -1e-9),
        ("data.val_fraction", 1e-9, 0.0),
        ("model.hidden", [1], [0]),
    ],
)
def test_each_bound_is_where_the_documentation_puts_it(
    key: str, lowest_allowed: object, highest_refused: object
) -> None:
    """Generated values rarely land on a bound: each one is pinned here."""
    base = TrainConfig(data=DataConfig(val_fraction=0.5), model=ModelConfig(hidden=[8]))
    validate(with_value(base, key, lowest_allowed))
    with pytest.raises(ConfigError, match=f"^{re.escape(key)}="):
        validate(with_value(base, key, highest_refused))


def test_zeros_init_is_refused_only_with_hidden_layers() -> None:
    cfg = TrainConfig(model=ModelConfig(hidden=[], init="zeros"))
    assert validate(cfg) is cfg
    with pytest.raises(ConfigError) as err:
        validate(TrainConfig(model=ModelConfig(hidden=[3], init="zeros")))
    assert str(err.value) == (
        "model.init='zeros' is invalid with hidden layers (every unit would stay identical): "
        "use glorot or he"
    )


def test_a_regularizer_without_lambda_is_valid() -> None:
    cfg = TrainConfig(regularizer=RegularizerConfig("l2", 0.0))
    assert validate(cfg) is cfg
