"""The training loop: mini-batch SGD, early stopping and the ``on_epoch_end`` hook.

This module and everything it imports know nothing of Hydra, MLflow or Optuna: observers
(a tracker, a sweep's trial, a progress line) are callables ``hook(epoch, metrics)`` that may
raise to stop training (an Optuna pruner does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.config import TrainConfig
from pipeline.data import Arrays, Dataset
from pipeline.network import Network
from pipeline.optim import Penalty, make_optimizer

EpochHook = Callable[[int, dict[str, float]], None]
EVAL_ROWS = 2000  # rows per evaluation chunk: large enough for BLAS, small enough for memory


class Diverged(ArithmeticError):
    """The loss became NaN or infinite: the learning rate is too high for this network."""


class StopTraining(Exception):
    """Raised by an epoch hook to end training now (a sweep's pruner); the run still completes
    normally with the best epoch so far, and the message becomes ``Result.stop_reason``."""


class EarlyStopping:
    """The report's rule: stop once the validation loss has risen ``patience`` epochs in a row.

    It remembers the epoch with the lowest validation loss, whose model training returns.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch = 0
        self.rises = 0
        self._previous = math.inf

    def update(self, epoch: int, val_loss: float) -> tuple[bool, bool]:
        """Record one epoch; return (is this the best epoch so far, should training stop)."""
        improved = val_loss < self.best_loss
        if improved:
            self.best_loss, self.best_epoch = val_loss, epoch
        self.rises = self.rises + 1 if val_loss > self._previous else 0
        self._previous = val_loss
        return improved, self.rises >= self.patience


@dataclass
class Result:
    """What a training run produced; ``network`` holds the best epoch's weights."""

    network: Network
    history: list[dict[str, float]]
    best_epoch: int
    stopped_epoch: int
    test_loss: float
    test_accuracy: float
    seconds: float
    stop_reason: str  # "early stopping", "max epochs", or a hook's StopTraining message
    run_id: str | None = None  # set when the run was recorded in MLflow


def evaluate(net: Network, data: Arrays) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, in chunks of ``EVAL_ROWS``."""
    ws = net.workspace(min(EVAL_ROWS, len(data)))
    total_loss, correct = 0.0, 0
    for start in range(0, len(data), ws.rows):
        end = start + ws.rows
        loss, probs = net.loss(data.x[start:end], data.t[start:end], ws)
        total_loss += loss
        correct += int(np.count_nonzero(probs.argmax(axis=1) == data.y[start:end]))
    return total_loss / len(data), correct / len(data)


def predict(net: Network, x: np.ndarray) -> np.ndarray:
    """Predicted class of every row of ``x``."""
    ws = net.workspace(min(EVAL_ROWS, len(x)))
    return np.concatenate(
        [net.forward(x[s : s + ws.rows], ws).argmax(axis=1) for s in range(0, len(x), ws.rows)]
    )


class Epochs:
    """Mini-batch SGD over a training split, one epoch per call (the report's Algorithm 1).

    Everything a step touches is allocated once here: optimizer state, workspace, and one
    batch-sized buffer per array that each step gathers its shuffled rows into. Gathering per
    batch into a cache-sized buffer measured faster than shuffling a whole copy of the data
    once per epoch: the copy's 150 MB of writes go to memory, the batch stays in cache.
    """

    def __init__(self, net: Network, train: Arrays, cfg: TrainConfig, rng: np.random.Generator):
        self.net, self.train, self.rng = net, train, rng
        self.optimizer = make_optimizer(cfg.optimizer, net.theta.size, net.dtype)
        self.penalty = Penalty(cfg.regularizer, net.n_weights, net.theta.size, net.dtype)
        self.batch = min(cfg.trainer.batch_size, len(train))
        self.ws = net.workspace(self.batch)
        self.x = np.empty((self.batch, train.x.shape[1]), train.x.dtype)
        self.t = np.empty((self.batch, train.t.shape[1]), train.t.dtype)
        self.predicted = np.empty(len(train), np.intp)  # argmax of every step, scored at the end

    def run(self) -> tuple[float, float]:
        """One epoch; returns the running mean of the batch losses and the batch accuracy."""
        net, train, ws = self.net, self.train, self.ws
        scale = self.optimizer.grad_scale
        order = self.rng.permutation(len(train))  # reshuffled every epoch
        total_loss = 0.0
        for s in range(0, len(train), self.batch):
            rows = order[s : s + self.batch]
            x, t = self.x[: len(rows)], self.t[: len(rows)]
            np.take(train.x, rows, axis=0, out=x, mode="clip")  # 'clip': no hidden copy
            np.take(train.t, rows, axis=0, out=t, mode="clip")
            loss, probs = net.loss(x, t, ws)
            total_loss += loss
            np.argmax(probs, axis=1, out=self.predicted[s : s + len(rows)])
            net.backward(x, t, probs, ws, scale)
            if self.penalty.active:
                self.penalty.add_grad(net.theta, net.grad, scale)
            self.optimizer.step(net.theta, net.grad)
        correct = np.count_nonzero(self.predicted == train.y[order])
        return total_loss / len(train), correct / len(train)


def fit(
    net: Network,
    train: Arrays,
    val: Arrays,
    cfg: TrainConfig,
    rng: np.random.Generator,
    hooks: Sequence[EpochHook] = (),
) -> tuple[list[dict[str, float]], EarlyStopping, str]:
    """Train ``net`` in place; on return it holds the weights of the best validation epoch.

    Returns the per-epoch metrics, the early-stopping state and why training ended.
    """
    epochs = Epochs(net, train, cfg, rng)
    stopper = EarlyStopping(cfg.trainer.patience)
    best = net.theta.copy()
    history: list[dict[str, float]] = []
    reason = "max epochs"
    for epoch in range(1, cfg.trainer.epochs + 1):
        start_time = time.perf_counter()
        train_loss, train_acc = epochs.run()
        val_loss, val_acc = evaluate(net, val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise Diverged(
                f"loss is no longer finite at epoch {epoch} (train {train_loss:.3g}, validation "
                f"{val_loss:.3g}): lower optimizer.lr (now {cfg.optimizer.lr})"
            )
        metrics = {
            "train_loss": train_loss,  # running mean over the epoch's batches: no extra pass
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "epoch_seconds": time.perf_counter() - start_time,
        }
        history.append(metrics)
        improved, stop = stopper.update(epoch, val_loss)
        if improved:
            np.copyto(best, net.theta)
        try:
            for hook in hooks:
                hook(epoch, metrics)
        except StopTraining as signal:
            reason = str(signal)
            break
        if stop:
            reason = "early stopping"
            break
    np.copyto(net.theta, best)
    return history, stopper, reason


def build_network(cfg: TrainConfig, n_in: int, n_out: int, rng: np.random.Generator) -> Network:
    sizes = [n_in, *cfg.model.hidden, n_out]
    return Network(sizes, cfg.model.activation, cfg.model.init, rng, cfg.trainer.dtype)


def train(cfg: TrainConfig, data: Dataset, hooks: Sequence[EpochHook] = ()) -> Result:
    """Build the network from a validated config, fit it, and test the best epoch's model."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    rng = np.random.default_rng(cfg.trainer.seed)
    net = build_network(cfg, data.train.x.shape[1], data.train.t.shape[1], rng)
    with threadpool_limits(cfg.trainer.threads), np.errstate(over="ignore", invalid="ignore"):
        history, stopper, reason = fit(net, data.train, data.val, cfg, rng, hooks)
        test_loss, test_acc = evaluate(net, data.test)
    return Result(
        network=net,
        history=history,
        best_epoch=stopper.best_epoch,
        stopped_epoch=len(history),
        test_loss=test_loss,
        test_accuracy=test_acc,
        seconds=time.perf_counter() - start,
        stop_reason=reason,
    )
