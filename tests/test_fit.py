"""The training loop: early stopping, real learning, exact repeatability, divergence."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import fit
from pipeline.config import (
    ConfigError,
    ModelConfig,
    OptimizerConfig,
    RegularizerConfig,
    TrackingConfig,
    TrainConfig,
    TrainerConfig,
)
from pipeline.data import Arrays, Dataset
from pipeline.fit import Diverged, EarlyStopping
from pipeline.network import Network
from pipeline.optim import SGD, Momentum


def test_early_stopping_on_a_scripted_sequence() -> None:
    stopper = EarlyStopping("rises", patience=3)
    losses = [1.0, 0.8, 0.85, 0.7, 0.75, 0.76, 0.74, 0.78, 0.79, 0.8]
    #  a rise at epoch 3 is followed by a fall (count resets); epochs 5-6 rise, 7 falls;
    #  epochs 8, 9, 10 rise three times in a row: stop at 10, best is epoch 4 (0.7)
    stops = [stopper.update(e, v)[1] for e, v in enumerate(losses, 1)]
    assert stops == [False] * 9 + [True]
    assert stopper.best_epoch == 4 and stopper.best_loss == 0.7


def test_plateau_is_not_a_rise() -> None:
    stopper = EarlyStopping("rises", patience=2)
    assert not any(stopper.update(e, 0.5)[1] for e in range(1, 10))


def test_short_run_learns_and_restores_best(make_config, small_mnist) -> None:
    seen: list[int] = []
    cfg = make_config(
        "experiment=momentum", "trainer.epochs=4", "tracking=none", "trainer.progress=false"
    )
    result = fit.train(cfg, small_mnist, [lambda epoch, m: seen.append(epoch)])
    assert seen == [1, 2, 3, 4]
    assert result.test_accuracy > 0.85  # chance is 0.10
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmin(val_losses))
    # the returned network is the best epoch's: re-evaluating it gives that epoch's val loss
    loss, _ = fit.evaluate(result.network, small_mnist.val)
    assert loss == pytest.approx(min(val_losses), rel=1e-5)


def test_early_stop_ends_training(make_config, small_mnist) -> None:
    # a huge penalty makes validation loss rise quickly; the loop must stop well before 50
    cfg = make_config(
        "experiment=l1",
        "regularizer.lam=0.3",
        "trainer.epochs=50",
        "trainer.patience=1",
        "tracking=none",
        "trainer.progress=false",
    )
    result = fit.train(cfg, small_mnist)
    assert result.stop_reason == "early stopping" and result.stopped_epoch < 50
    assert result.best_epoch <= result.stopped_epoch - 1


@pytest.mark.parametrize("preset", ["softmax", "sigmoid", "relu", "l2"])
def test_same_seed_same_numbers(make_config, small_mnist, preset: str) -> None:
    args = (f"experiment={preset}", "trainer.epochs=2", "tracking=none", "trainer.progress=false")
    a = fit.train(make_config(*args), small_mnist)
    b = fit.train(make_config(*args), small_mnist)
    c = fit.train(make_config(*args, "trainer.seed=1"), small_mnist)
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]
    assert np.array_equal(a.network.theta, b.network.theta)
    assert not np.array_equal(a.network.theta, c.network.theta)


def test_a_hook_can_stop_training(make_config, small_mnist) -> None:
    def prune(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise fit.StopTraining("pruned at epoch 2")

    cfg = make_config("trainer.epochs=10", "tracking=none", "trainer.progress=false")
    result = fit.train(cfg, small_mnist, [prune])
    assert result.stopped_epoch == 2 and result.stop_reason == "pruned at epoch 2"
    assert result.test_accuracy > 0.5


def test_float64_on_request(make_config) -> None:
    from pipeline.train import load_data

    cfg = make_config(
        "trainer.dtype=float64",
        "data.max_train=1000",
        "data.max_test=100",
        "trainer.epochs=1",
        "tracking=none",
        "trainer.progress=false",
    )
    result = fit.train(cfg, load_data(cfg))
    assert result.network.theta.dtype == np.float64


def test_divergence_is_an_error(make_config, small_mnist) -> None:
    cfg = make_config(
        "experiment=relu",
        "optimizer.lr=1e6",
        "trainer.epochs=3",
        "tracking=none",
        "trainer.progress=false",
    )
    with pytest.raises(Diverged, match=r"lower optimizer\.lr"):
        fit.train(cfg, small_mnist)


def test_patience_rule_counts_epochs_since_the_best() -> None:
    stopper = EarlyStopping("patience", patience=3)
    losses = [1.0, 0.8, 0.9, 0.85, 0.82, 0.79, 0.81, 0.8, 0.795]
    # best 0.8 at 2; 3, 4, 5 do not beat it (no three rises in a row) -> stop at 5
    stop_at = next(e for e, v in enumerate(losses, 1) if stopper.update(e, v)[1])
    assert stop_at == 5 and stopper.best_epoch == 2
    rises = EarlyStopping("rises", patience=3)
    assert not any(rises.update(e, v)[1] for e, v in enumerate(losses, 1))


def test_rule_none_never_stops_and_keeps_the_last_epoch(make_config, small_mnist) -> None:
    stopper = EarlyStopping("none", patience=1)
    assert not any(stopper.update(e, float(e))[1] for e in range(1, 20))  # rises every epoch
    cfg = make_config(
        "experiment=sigmoid",
        "optimizer.lr=5",  # too large: the validation loss jumps about
        "trainer.stopping=none",
        "trainer.epochs=4",
        "tracking=none",
        "trainer.progress=false",
    )
    result = fit.train(cfg, small_mnist)
    assert result.stopped_epoch == 4 and result.best_epoch == 4
    loss, _ = fit.evaluate(result.network, small_mnist.val)
    assert loss == pytest.approx(result.history[-1]["val_loss"], rel=1e-5)


def test_monitor_with_penalty_term(make_config, small_mnist) -> None:
    cfg = make_config(
        "experiment=l2",
        "trainer.monitor=val_objective",
        "trainer.epochs=3",
        "tracking=none",
        "trainer.progress=false",
    )
    result = fit.train(cfg, small_mnist)
    w = result.network.theta[: result.network.n_weights].astype(np.float64)
    kept = result.history[result.best_epoch - 1]
    # the kept model's objective is its validation loss plus lam/2 |w|^2
    assert kept["val_objective"] == pytest.approx(
        kept["val_loss"] + 0.5 * 0.01 * float(w @ w), rel=1e-4
    )
    objectives = [h["val_objective"] for h in result.history]
    assert result.best_epoch == 1 + int(np.argmin(objectives))


@pytest.mark.parametrize(
    "options",
    [
        ["regularizer.scale=sum"],
        ["regularizer.l1_half=true"],
        ["regularizer.penalize_bias=true"],
        ["model.init=normal"],
        ["model.init=uniform"],
    ],
)
def test_each_gradient_or_init_option_trains(make_config, small_mnist, options: list[str]) -> None:
    args = ("experiment=l1", "trainer.epochs=2", "tracking=none", "trainer.progress=false")
    result = fit.train(make_config(*args, *options), small_mnist)
    assert result.test_accuracy > 0.5
    default = fit.train(make_config(*args), small_mnist)
    assert not np.array_equal(result.network.theta, default.network.theta)  # it changes a thing


# Scripted tests on tiny synthetic arrays (milliseconds each): they pin what short trainings
# on real data cannot see, e.g. a validation loss that rises before the end, a split larger
# than one evaluation chunk, the exact step a penalty adds.


def synthetic(rows: int, seed: int = 0, features: int = 5, classes: int = 3) -> Arrays:
    """Distinct random rows, one-hot targets; float64 so hand computations match exactly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    return Arrays(rng.standard_normal((rows, features)), np.eye(classes)[y], y)


def tiny_config(
    optimizer: str = "sgd",
    lr: float = 0.5,
    regularizer: RegularizerConfig | None = None,
    **trainer: object,
) -> TrainConfig:
    return TrainConfig(
        model=ModelConfig(hidden=[4], activation="tanh"),
        optimizer=OptimizerConfig(optimizer, lr=lr, gamma=0.9),
        regularizer=regularizer or RegularizerConfig(),
        trainer=TrainerConfig(**{"dtype": "float64", "progress": False, **trainer}),
        tracking=TrackingConfig(enabled=False),
    )


def rng(seed: int = 5) -> np.random.Generator:
    return np.random.default_rng(seed)


def tiny_network(seed: int = 1) -> Network:
    return Network([5, 4, 3], "tanh", "glorot", np.random.default_rng(seed), "float64")


def data_gradient(net: Network, data: Arrays) -> np.ndarray:
    """d(mean cross-entropy)/d(theta) over all of ``data`` (backprop is checked against
    central differences in test_gradcheck)."""
    ws = net.workspace(len(data))
    _, probs = net.loss(data.x, data.t, ws)
    net.backward(data.x, data.t, probs, ws, 1.0)
    return net.grad.copy()


@pytest.mark.parametrize(
    ("optimizer", "regularizer"),
    [
        ("momentum", RegularizerConfig("l2", 0.3)),
        ("momentum", RegularizerConfig("l1", 0.3)),
        ("momentum", RegularizerConfig("l2", 0.3, penalize_bias=True)),
        ("momentum", RegularizerConfig("l2", 0.3, scale="sum")),
        ("sgd", RegularizerConfig("l1", 0.3, l1_half=True)),
        ("sgd", RegularizerConfig()),
    ],
)
def test_each_step_is_the_hand_computed_update(
    optimizer: str, regularizer: RegularizerConfig
) -> None:
    """Two full-batch steps against the report's rules worked out here: the step scale
    ((1 - gamma) lr for momentum, lr for SGD) multiplies the penalty's gradient exactly as it
    does the data's, and momentum's velocity carries gamma times the previous step."""
    train = synthetic(6)
    cfg = tiny_config(optimizer, regularizer=regularizer, batch_size=6)
    net, twin = tiny_network(), tiny_network()
    epochs = fit.Epochs(net, train, cfg, np.random.default_rng(0))
    scale = 0.5 * (0.1 if optimizer == "momentum" else 1.0)
    gamma = 0.9 if optimizer == "momentum" else 0.0
    n = twin.theta.size if regularizer.penalize_bias else twin.n_weights
    lam = regularizer.lam * (0.5 if regularizer.l1_half else 1.0)
    lam /= 6 if regularizer.scale == "sum" else 1
    velocity = np.zeros_like(twin.theta)
    for _ in range(2):
        grad = data_gradient(twin, train)
        w = twin.theta[:n]
        if regularizer.kind != "none":
            grad[:n] += lam * (w if regularizer.kind == "l2" else np.sign(w))
        velocity = gamma * velocity + scale * grad
        twin.theta -= velocity
        epochs.run()
        np.testing.assert_allclose(net.theta, twin.theta, rtol=1e-10, atol=1e-14)
    assert isinstance(epochs.optimizer, Momentum if optimizer == "momentum" else SGD)


@pytest.mark.parametrize(("rows", "batch_size"), [(23, 5), (23, 23), (7, 100)])
def test_epoch_metrics_are_per_row_against_the_shuffled_labels(rows: int, batch_size: int):
    """With a zero learning rate the weights stay put, so an epoch's running loss and
    accuracy must be exactly the whole split's: summed over rows, divided by the row count
    (not a batch's), each prediction scored against its own (shuffled) row's label."""
    train = synthetic(rows, seed=3)
    net = tiny_network()
    epochs = fit.Epochs(net, train, tiny_config(lr=0.0, batch_size=batch_size), rng())
    assert epochs.batch == min(batch_size, rows)
    expected = fit.evaluate(net, train)
    for _ in range(2):
        loss, accuracy = epochs.run()
        assert loss == pytest.approx(expected[0], rel=1e-12)
        assert accuracy == expected[1]


def test_every_epoch_is_reshuffled_and_gathers_matching_rows(monkeypatch) -> None:
    """Each epoch visits every row once in a new order drawn from the run's generator, and a
    batch's targets are its own rows' targets."""
    train = synthetic(10, seed=4)
    net = tiny_network()
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    loss = net.loss

    def spy(x: np.ndarray, t: np.ndarray, ws: object) -> tuple[float, np.ndarray]:
        seen.append((x.copy(), t.copy()))
        return loss(x, t, ws)

    monkeypatch.setattr(net, "loss", spy)
    epochs = fit.Epochs(net, train, tiny_config(lr=0.1, batch_size=4), rng())
    reference = rng()
    orders = [reference.permutation(10), reference.permutation(10)]
    assert not np.array_equal(*orders)
    for order in orders:
        seen.clear()
        epochs.run()
        assert [len(x) for x, _ in seen] == [4, 4, 2]
        np.testing.assert_array_equal(np.concatenate([x for x, _ in seen]), train.x[order])
        np.testing.assert_array_equal(np.concatenate([t for _, t in seen]), train.t[order])


def scripted(monkeypatch, val_losses: list[float], val_accuracy: float = 0.5) -> None:
    """Make ``fit.evaluate`` return the scripted validation losses, one per epoch."""
    script = iter(val_losses)
    monkeypatch.setattr(fit, "evaluate", lambda net, data: (next(script), val_accuracy))


def fit_scripted(
    monkeypatch, val_losses: list[float], **trainer: object
) -> tuple[list[dict], int, object, dict[int, np.ndarray], Network]:
    """``fit`` on tiny arrays whose validation losses are scripted; returns its result, the
    weights after every epoch and the network."""
    scripted(monkeypatch, val_losses)
    net = tiny_network()
    after: dict[int, np.ndarray] = {}
    cfg = tiny_config(lr=0.3, batch_size=3, epochs=len(val_losses), **trainer)
    history, kept, stopped = fit.fit(
        net,
        synthetic(9),
        synthetic(4, seed=1),
        cfg,
        rng(),
        [lambda epoch, m: after.__setitem__(epoch, net.theta.copy())],
    )
    return history, kept, stopped, after, net


@pytest.mark.parametrize(
    ("stopping", "patience", "losses", "stopped_at", "kept"),
    [
        ("rises", 2, [0.9, 0.5, 0.6, 0.4, 0.45, 0.5, 0.3], 6, 4),  # a rise, then the best
        ("rises", 3, [0.9, 0.5, 0.6, 0.7, 0.65, 0.66, 0.67], 7, 2),  # never stops early
        ("patience", 2, [0.9, 0.5, 0.6, 0.4, 0.45, 0.41, 0.3], 6, 4),
        ("patience", 1, [0.9, 0.9, 0.3], 2, 1),  # a tie is no improvement
        ("none", 1, [0.9, 0.5, 0.6, 0.7], 4, 4),  # the last epoch, worse than the best
    ],
)
def test_fit_keeps_the_best_epochs_weights_when_the_loss_rises_before_the_end(
    monkeypatch, stopping: str, patience: int, losses: list, stopped_at: int, kept: int
) -> None:
    history, kept_epoch, stopped, after, net = fit_scripted(
        monkeypatch, losses, stopping=stopping, patience=patience
    )
    assert len(history) == stopped_at and kept_epoch == kept
    assert [h["val_loss"] for h in history] == losses[:stopped_at]
    np.testing.assert_array_equal(net.theta, after[kept])
    assert not np.array_equal(after[kept], after[stopped_at]) or kept == stopped_at
    if stopped_at < len(losses):
        assert str(stopped) == "early stopping"
    else:
        assert stopped is None


def test_hooks_see_each_epochs_metrics(monkeypatch) -> None:
    scripted(monkeypatch, [0.5, 0.4, 0.3])
    seen: list[tuple[int, dict]] = []
    cfg = tiny_config(lr=0.3, batch_size=3, epochs=3)
    history, _, _ = fit.fit(
        tiny_network(), synthetic(9), synthetic(4, seed=1), cfg, rng(),
        [lambda epoch, metrics: seen.append((epoch, metrics))],
    )  # fmt: skip
    assert seen == list(enumerate(history, 1))
    assert [m["val_loss"] for _, m in seen] == [0.5, 0.4, 0.3]


def test_every_buffer_of_a_step_is_float32_unless_asked() -> None:
    """float32 halves the memory traffic of every step: the optimizer's velocity, the
    penalty's scratch space and the batch buffers follow the network's dtype."""
    cfg = tiny_config("momentum", regularizer=RegularizerConfig("l2", 0.1), batch_size=4)
    net = Network([5, 4, 3], "tanh", "glorot", rng(), "float32")
    train = synthetic(9)
    train = Arrays(train.x.astype(np.float32), train.t.astype(np.float32), train.y)
    epochs = fit.Epochs(net, train, cfg, rng())
    buffers = [epochs.optimizer.velocity, epochs.penalty._tmp, epochs.x, epochs.t, net.grad]
    assert {b.dtype for b in buffers} == {np.dtype(np.float32)}


def test_a_later_equal_loss_does_not_replace_the_best_weights(monkeypatch) -> None:
    _, kept, _, after, net = fit_scripted(monkeypatch, [0.5, 0.4, 0.4, 0.6], patience=5)
    assert kept == 2
    np.testing.assert_array_equal(net.theta, after[2])


def test_monitor_val_objective_adds_the_penalty_at_the_batch_size(monkeypatch) -> None:
    """Early stopping may watch the validation loss plus the penalty term; that term is the
    one a training step of ``batch`` rows sees (lam / B with scale=sum)."""
    scripted(monkeypatch, [1.0, 1.0])
    net = tiny_network()
    regularizer = RegularizerConfig("l2", 0.5, scale="sum")
    cfg = tiny_config(lr=0.0, regularizer=regularizer, batch_size=4, epochs=2)
    cfg.trainer.monitor = "val_objective"
    history, kept, _ = fit.fit(net, synthetic(9), synthetic(4, seed=1), cfg, rng())
    w = net.theta[: net.n_weights]
    assert history[0]["val_objective"] == pytest.approx(1.0 + 0.5 * 0.5 / 4 * float(w @ w))
    assert kept == 1  # equal objectives: the first stays the best
    assert set(history[0]) == {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_seconds",
        "val_objective",
    }


@pytest.mark.parametrize(
    ("train_loss", "val_loss"), [(float("nan"), 0.5), (0.5, float("inf")), (float("-inf"), 0.5)]
)
def test_a_non_finite_loss_is_divergence_naming_both_losses(
    monkeypatch, train_loss: float, val_loss: float
) -> None:
    scripted(monkeypatch, [val_loss])
    monkeypatch.setattr(fit.Epochs, "run", lambda self: (train_loss, 0.5))
    cfg = tiny_config(lr=2.0, regularizer=RegularizerConfig("l1", 0.25), epochs=3)
    with pytest.raises(Diverged) as err:
        fit.fit(tiny_network(), synthetic(9), synthetic(4, seed=1), cfg, rng())
    assert str(err.value) == (
        f"loss is no longer finite at epoch 1 (train {train_loss:.3g}, validation "
        f"{val_loss:.3g}): lower optimizer.lr (now 2.0) or regularizer.lam (now 0.25)"
    )


def test_the_divergence_message_names_lambda_only_with_a_penalty() -> None:
    for regularizer in (RegularizerConfig(lam=0.5), RegularizerConfig("l2", 0.0)):
        message = fit.diverged_message(tiny_config(lr=3.0, regularizer=regularizer), 2, 1, 1)
        assert message.endswith("lower optimizer.lr (now 3.0)")


def synthetic_dataset(val_labels: list[int]) -> Dataset:
    val = synthetic(len(val_labels), seed=1)
    val = Arrays(val.x, np.eye(3)[val_labels], np.array(val_labels))
    return Dataset(synthetic(12), val, synthetic(5, seed=2), "digest", "synthetic", None, val.x)


@pytest.mark.parametrize(("accuracy", "learned"), [(0.8, True), (0.79, False)])
def test_a_result_learned_only_five_points_above_the_commonest_class(
    monkeypatch, accuracy: float, learned: bool
) -> None:
    data = synthetic_dataset([0, 0, 0, 1])  # always guessing 0 scores 0.75
    accuracies = iter([0.0, accuracy, 0.5])
    test_metrics = (0.25, 0.875)

    def evaluate(net: Network, split: Arrays) -> tuple[float, float]:
        return test_metrics if split is data.test else (1.0 - len(seen) / 10, next(accuracies))

    seen: list[int] = []
    monkeypatch.setattr(fit, "evaluate", evaluate)
    cfg = tiny_config(epochs=2, stopping="none", batch_size=4)
    result = fit.train(cfg, data, [lambda epoch, m: seen.append(epoch)])
    assert (result.best_epoch, result.stopped_epoch, result.stop_reason) == (2, 2, "max epochs")
    assert result.learned is learned and not result.pruned
    assert (result.test_loss, result.test_accuracy) == test_metrics
    assert result.network.theta.dtype == np.float64 and result.seconds > 0
    assert [h["val_accuracy"] for h in result.history] == [0.0, accuracy]


def test_a_pruned_result_has_no_test_metrics(monkeypatch) -> None:
    data = synthetic_dataset([0, 1, 2, 0])

    def prune(epoch: int, metrics: dict) -> None:
        raise fit.Pruned("pruned at epoch 1")

    result = fit.train(tiny_config(epochs=3), data, [prune])
    assert result.pruned and result.stopped_epoch == 1 and result.stop_reason == "pruned at epoch 1"
    assert np.isnan(result.test_loss) and np.isnan(result.test_accuracy)


def test_predict_is_the_argmax_of_the_forward_pass_over_several_chunks(monkeypatch) -> None:
    monkeypatch.setattr(fit, "EVAL_ROWS", 4)
    net, data = tiny_network(), synthetic(11)
    logits = net.forward(data.x, net.workspace(11)).copy()
    np.testing.assert_array_equal(fit.predict(net, data.x), logits.argmax(axis=1))


def test_the_memory_check_is_the_documented_estimate(monkeypatch) -> None:
    """Parameters (weights, gradient, best copy, momentum, penalty scratch: 5 of each) and
    three buffers of every layer's outputs for a training and an evaluation workspace: a
    machine one byte smaller than that refuses the network, one of that size builds it."""
    cfg = tiny_config(batch_size=16)
    cfg.model.hidden = [7, 6]
    cfg.trainer.dtype = "float32"
    params = 5 * 7 + 7 + 7 * 6 + 6 + 6 * 3 + 3
    needed = (5 * params + 3 * (16 + fit.EVAL_ROWS) * (7 + 6 + 3)) * 4
    for memory, fits in ((needed, True), (needed - 1, False)):
        sizes = {"SC_PAGE_SIZE": 1, "SC_PHYS_PAGES": memory}
        monkeypatch.setattr(fit.os, "sysconf", lambda name, sizes=sizes: sizes[name])
        if fits:
            net = fit.build_network(cfg, 5, 3, rng())
            assert net.sizes == [5, 7, 6, 3] and net.dtype == np.float32
            assert net.activation == "tanh"
            continue
        with pytest.raises(ConfigError) as err:
            fit.build_network(cfg, 5, 3, rng())
        assert str(err.value) == (
            "model.hidden=[7, 6] needs about 0 GiB for the parameters and buffers, more than "
            "this machine's 0 GiB: use fewer or smaller hidden layers"
        )


def test_the_memory_message_counts_gibibytes(monkeypatch) -> None:
    cfg = tiny_config(batch_size=16)
    cfg.model.hidden = [250_000]
    cfg.trainer.dtype = "float32"
    params = 5 * 250_000 + 250_000 + 250_000 * 3 + 3
    needed = (5 * params + 3 * (16 + fit.EVAL_ROWS) * (250_000 + 3)) * 4  # 5.67 GiB
    sizes = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": (needed - 1) // 4096}
    monkeypatch.setattr(fit.os, "sysconf", lambda name: sizes[name])
    with pytest.raises(ConfigError) as err:
        fit.build_network(cfg, 5, 3, rng())
    assert str(err.value).startswith(
        "model.hidden=[250000] needs about 6 GiB for the parameters and buffers, more than "
        "this machine's 6 GiB"
    )


def test_a_huge_batch_is_named_and_leaves_no_run(make_config, store: str) -> None:
    from mlflow import MlflowClient

    from pipeline import train

    cfg = make_config("data.max_train=500", "trainer.batch_size=1000000000000")
    cfg.tracking.uri = store
    with pytest.raises(ConfigError) as err:
        train.run(cfg)
    assert str(err.value).startswith("trainer.batch_size=1000000000000 needs about")
    assert str(err.value).endswith("GiB: use a smaller batch")
    client = MlflowClient(store)
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_timings_are_durations(monkeypatch) -> None:
    scripted(monkeypatch, [0.5, 0.4, 0.3])  # two epochs, then the test split
    cfg = tiny_config(epochs=2, batch_size=4)
    result = fit.train(cfg, synthetic_dataset([0, 1, 2, 0]))
    assert 0 < result.seconds < 60
    assert all(0 < h["epoch_seconds"] < 60 for h in result.history)


def test_a_diverging_run_raises_diverged_without_numpy_warnings() -> None:
    """Overflow and invalid values are expected on the way to divergence: silenced, so the
    user sees one line, not a screen of NumPy warnings."""
    import warnings

    data = synthetic_dataset([0, 1, 2, 0])
    huge = Arrays(data.train.x * 1e200, data.train.t, data.train.y)
    cfg = tiny_config(lr=1e300, epochs=3, batch_size=4)
    cfg.model.activation = "relu"
    with warnings.catch_warnings(), pytest.raises(Diverged, match="at epoch 1 "):
        warnings.simplefilter("error")
        fit.train(cfg, Dataset(huge, data.val, data.test, "d", "d", None, data.val.x))


def test_training_uses_the_configured_number_of_threads(monkeypatch) -> None:
    from threadpoolctl import threadpool_info

    scripted(monkeypatch, [0.5, 0.4])
    seen: list[set[int]] = []
    cfg = tiny_config(epochs=1, batch_size=4, threads=1)

    def threads(epoch: int, metrics: dict) -> None:
        seen.append({p["num_threads"] for p in threadpool_info()})

    fit.train(cfg, synthetic_dataset([0, 1, 2, 0]), [threads])
    assert seen == [{1}]
