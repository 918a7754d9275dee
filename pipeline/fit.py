"""The training loop: mini-batch SGD, early stopping and the ``on_epoch_end`` hook.

This module and everything it imports know nothing of Hydra, MLflow or Optuna: observers
(a tracker, a sweep's trial, a progress line) are callables ``hook(epoch, metrics)`` that may
raise to stop training (an Optuna pruner does).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from pipeline.config import ConfigError, TrainConfig
from pipeline.data import Arrays, Dataset
from pipeline.network import Network
from pipeline.optim import Penalty, make_optimizer

EpochHook = Callable[[int, dict[str, float]], None]
EVAL_ROWS = 2000  # rows per evaluation chunk: large enough for BLAS, small enough for memory
CHANCE_MARGIN = 0.05  # a model this close to always guessing the commonest class learned nothing


class Diverged(ArithmeticError):
    """The loss became NaN or infinite: the learning rate is too high for this network."""


class StopTraining(Exception):
    """Raised by an epoch hook to end training now; the run still completes normally with the
    best epoch so far, and the message becomes ``Result.stop_reason``."""


class Pruned(StopTraining):
    """Raised by a sweep's pruner: what trained is a partial curve, not a result, so the test
    set is left alone (``Result.pruned``)."""


class EarlyStopping:
    """When to stop, judged on the monitored validation loss, and which epoch's model to keep.

    ``rises`` is the report's rule: stop once the loss has risen ``patience`` epochs in a row.
    ``patience`` is the common one: stop once ``patience`` epochs have passed without a new
    best. Both keep the best epoch's model. ``none`` trains every epoch and keeps the last.
    """

    def __init__(self, rule: str, patience: int) -> None:
        self.rule = rule
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch = 0
        self.rises = 0
        self._previous = math.inf

    @property
    def keeps_best(self) -> bool:
        return self.rule != "none"

    def update(self, epoch: int, val_loss: float) -> tuple[bool, bool]:
        """Record one epoch; return (is this the best epoch so far, should training stop)."""
        improved = val_loss < self.best_loss
        if improved:
            self.best_loss, self.best_epoch = val_loss, epoch
        self.rises = self.rises + 1 if val_loss > self._previous else 0
        self._previous = val_loss
        if self.rule == "rises":
            return improved, self.rises >= self.patience
        if self.rule == "patience":
            return improved, epoch - self.best_epoch >= self.patience
        return improved, False


@dataclass
class Result:
    """What a training run produced; ``network`` holds the best epoch's weights."""

    network: Network
    history: list[dict[str, float]]
    best_epoch: int  # the epoch whose weights ``network`` holds
    stopped_epoch: int
    test_loss: float
    test_accuracy: float
    seconds: float
    stop_reason: str  # "early stopping", "max epochs", or a hook's StopTraining message
    learned: bool  # the kept model beats always guessing the commonest class by 5 points
    pruned: bool = False  # a pruner stopped it; test metrics are NaN
    run_id: str | None = None  # set when the run was recorded in MLflow
    outbox: str | None = None  # where its record was kept when the store went away mid-run


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
                self.penalty.add_grad(net.theta, net.grad, scale, len(rows))
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
) -> tuple[list[dict[str, float]], int, StopTraining | None]:
    """Train ``net`` in place; on return it holds the model early stopping keeps.

    Returns the per-epoch metrics, the epoch of the kept model, and the hook's ``StopTraining``
    if one ended training (else None; ``stopper`` says whether early stopping did).
    """
    epochs = Epochs(net, train, cfg, rng)
    stopper = EarlyStopping(cfg.trainer.stopping, cfg.trainer.patience)
    best = net.theta.copy()
    history: list[dict[str, float]] = []
    stopped: StopTraining | None = None
    for epoch in range(1, cfg.trainer.epochs + 1):
        start_time = time.perf_counter()
        train_loss, train_acc = epochs.run()
        val_loss, val_acc = evaluate(net, val)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise Diverged(diverged_message(cfg, epoch, train_loss, val_loss))
        metrics = {
            "train_loss": train_loss,  # running mean over the epoch's batches: no extra pass
            "train_accuracy": train_acc,
            "val_loss": val_loss,
            "val_accuracy": val_acc,
            "epoch_seconds": time.perf_counter() - start_time,
        }
        if cfg.trainer.monitor == "val_objective":  # what training minimises, on validation
            metrics["val_objective"] = val_loss + epochs.penalty.loss(net.theta, epochs.batch)
        history.append(metrics)
        improved, stop = stopper.update(epoch, metrics[cfg.trainer.monitor])
        if improved and stopper.keeps_best:
            np.copyto(best, net.theta)
        try:
            for hook in hooks:
                hook(epoch, metrics)
        except StopTraining as signal:
            stopped = signal
            break
        if stop:
            stopped = StopTraining("early stopping")
            break
    if not stopper.keeps_best:
        return history, len(history), stopped
    np.copyto(net.theta, best)
    return history, stopper.best_epoch, stopped


def diverged_message(cfg: TrainConfig, epoch: int, train_loss: float, val_loss: float) -> str:
    """Name every setting that makes the step too large."""
    culprits = f"optimizer.lr (now {cfg.optimizer.lr})"
    if cfg.regularizer.kind != "none" and cfg.regularizer.lam > 0:
        culprits += f" or regularizer.lam (now {cfg.regularizer.lam})"
    return (
        f"loss is no longer finite at epoch {epoch} (train {train_loss:.3g}, validation "
        f"{val_loss:.3g}): lower {culprits}"
    )


def check_memory(cfg: TrainConfig, n_in: int, n_out: int) -> None:
    """Refuse, in one line naming the setting that dominates, a network that cannot fit in this
    machine's memory (NumPy would reserve it lazily, and the kernel would kill the run
    mid-epoch instead). Checked before any record exists: a bad input leaves no run."""
    sizes = [n_in, *cfg.model.hidden, n_out]
    params = 5 * sum(a * b + b for a, b in pairwise(sizes))  # weights, gradients, velocity...
    batch = 3 * cfg.trainer.batch_size * sum(sizes[1:])  # the training workspace
    evaluation = 3 * EVAL_ROWS * sum(sizes[1:])  # and the evaluation one
    needed = (params + batch + evaluation) * np.dtype(cfg.trainer.dtype).itemsize
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > total:
        culprit, fix = (
            (f"trainer.batch_size={cfg.trainer.batch_size}", "use a smaller batch")
            if batch > params + evaluation
            else (f"model.hidden={cfg.model.hidden}", "use fewer or smaller hidden layers")
        )
        raise ConfigError(
            f"{culprit} needs about {needed / 2**30:.0f} GiB for the parameters and buffers, "
            f"more than this machine's {total / 2**30:.0f} GiB: {fix}"
        )


def build_network(cfg: TrainConfig, n_in: int, n_out: int, rng: np.random.Generator) -> Network:
    """The configured network, once its memory is known to fit."""
    check_memory(cfg, n_in, n_out)
    sizes = [n_in, *cfg.model.hidden, n_out]
    return Network(sizes, cfg.model.activation, cfg.model.init, rng, cfg.trainer.dtype)


def train(cfg: TrainConfig, data: Dataset, hooks: Sequence[EpochHook] = ()) -> Result:
    """Build the network from a validated config, fit it, and test the best epoch's model."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    rng = np.random.default_rng(cfg.trainer.seed)
    net = build_network(cfg, data.train.x.shape[1], data.train.t.shape[1], rng)
    with threadpool_limits(cfg.trainer.threads), np.errstate(over="ignore", invalid="ignore"):
        history, kept_epoch, stopped = fit(net, data.train, data.val, cfg, rng, hooks)
        pruned = isinstance(stopped, Pruned)
        test_loss, test_acc = (math.nan, math.nan) if pruned else evaluate(net, data.test)
    chance = np.bincount(data.val.y).max() / len(data.val)
    return Result(
        network=net,
        history=history,
        best_epoch=kept_epoch,
        stopped_epoch=len(history),
        test_loss=test_loss,
        test_accuracy=test_acc,
        seconds=time.perf_counter() - start,
        stop_reason=str(stopped) if stopped else "max epochs",
        learned=bool(history[kept_epoch - 1]["val_accuracy"] >= chance + CHANCE_MARGIN),
        pruned=pruned,
    )
