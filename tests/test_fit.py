"""The training loop: early stopping, real learning, exact repeatability, divergence."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import fit
from pipeline.fit import Diverged, EarlyStopping


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
