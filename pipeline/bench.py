"""Seconds per epoch against the matrix-product floor, PyTorch and scikit-learn: ``make bench``.

One epoch is the report's: 48,000 training images in batches of 128 (forward, backward,
momentum update), then a forward pass over the 12,000 validation images. Every variant runs
once per round and rounds interleave, so the machine's drift hits all alike; we print the median
and the spread (min-max). The floor is the same matrix products timed alone, in this run.
Two more lines measure throughput: two single-thread runs in parallel against one two-thread
run, which decides how the report schedules its runs. No timing is ever asserted in tests.

    python -m pipeline.bench [--rounds 5] [--quick] [--out reports/bench]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline import fit
from pipeline.config import ModelConfig, TrainConfig, TrainerConfig
from pipeline.data import Dataset

BATCH = 128
LR = {"softmax": 0.05, "tanh": 0.1, "sigmoid": 0.5, "relu": 0.1}


def workload_config(model: str, dtype: str, epochs: int = 1) -> TrainConfig:
    hidden = [] if model == "softmax" else [128]
    activation = "tanh" if model == "softmax" else model
    init = "zeros" if model == "softmax" else "glorot"
    cfg = TrainConfig(
        model=ModelConfig(hidden, activation, init),
        trainer=TrainerConfig(epochs=epochs, patience=10**6, dtype=dtype, progress=False),
    )
    cfg.optimizer.lr = LR[model]
    return cfg


# A product: left operand's stored shape and whether it is used transposed, the same for the
# right operand, and how many times an epoch computes it.
Product = tuple[tuple[int, int], bool, tuple[int, int], bool, int]


def products(sizes: list[int], n_train: int, n_val: int) -> list[Product]:
    """Every matrix product of one epoch, with the operand layouts the core really uses:
    forward x @ w, weight gradient x.T @ delta, input gradient delta @ w.T (none for the data
    itself), then the validation forward pass in chunks."""
    steps = n_train // BATCH
    out: list[Product] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        out.append(((BATCH, a), False, (a, b), False, steps))
        out.append(((BATCH, a), True, (BATCH, b), False, steps))
        if i:
            out.append(((BATCH, b), False, (a, b), True, steps))
        out.append(((fit.EVAL_ROWS, a), False, (a, b), False, n_val // fit.EVAL_ROWS))
    return out


def gflop(prods: list[Product]) -> float:
    total = 0
    for a_shape, ta, b_shape, tb, count in prods:
        m, k = a_shape[::-1] if ta else a_shape
        n = b_shape[0] if tb else b_shape[1]
        total += 2 * m * k * n * count
    return total / 1e9


def floor_epoch(prods: list[Product], dtype: str) -> Callable[[], None]:
    """The epoch's products alone, on preallocated operands: what BLAS needs at the least."""
    rng = np.random.default_rng(0)
    operands = []
    for a_shape, ta, b_shape, tb, count in prods:
        a = rng.standard_normal(a_shape).astype(dtype)
        b = rng.standard_normal(b_shape).astype(dtype)
        a, b = (a.T if ta else a), (b.T if tb else b)
        operands.append((a, b, np.empty((a.shape[0], b.shape[1]), dtype), count))

    def run() -> None:
        for a, b, out, count in operands:
            for _ in range(count):
                np.matmul(a, b, out=out)

    return run


def ours_epoch(data: Dataset, model: str, dtype: str) -> Callable[[], None]:
    cfg = workload_config(model, dtype)
    net = fit.build_network(cfg, 784, 10, np.random.default_rng(0))
    epochs = fit.Epochs(net, data.train, cfg, np.random.default_rng(0))

    def run() -> None:
        epochs.run()
        fit.evaluate(net, data.val)

    return run


def torch_epoch(data: Dataset, model: str, dtype: str) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    tdtype = getattr(torch, dtype)
    x, y = torch.from_numpy(data.train.x).to(tdtype), torch.from_numpy(data.train.y)
    xv = torch.from_numpy(data.val.x).to(tdtype)
    act = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    layers = (
        [torch.nn.Linear(784, 10)]
        if model == "softmax"
        else [torch.nn.Linear(784, 128), act[model](), torch.nn.Linear(128, 10)]
    )
    net = torch.nn.Sequential(*layers).to(tdtype)
    momentum = 0.0 if model == "softmax" else 0.9
    opt = torch.optim.SGD(net.parameters(), lr=LR[model] * (1 - momentum), momentum=momentum)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run() -> None:
        order = torch.randperm(len(x))
        xs, ys = x[order], y[order]
        for s in range(0, len(xs), BATCH):
            opt.zero_grad(set_to_none=True)
            loss_fn(net(xs[s : s + BATCH]), ys[s : s + BATCH]).backward()
            opt.step()
        with torch.no_grad():
            net(xv).argmax(1)

    return run


def sklearn_epoch(data: Dataset, model: str, dtype: str) -> Callable[[], None] | None:
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    import warnings

    hidden = (128,) if model != "softmax" else ()
    clf = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation="tanh"
        if model == "softmax"
        else {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}[model],
        solver="sgd",
        batch_size=BATCH,
        learning_rate_init=LR[model] * 0.1,
        momentum=0.0 if model == "softmax" else 0.9,
        nesterovs_momentum=False,
        alpha=0.0,
        random_state=0,
    )
    x, y, xv = data.train.x.astype(dtype), data.train.y, data.val.x.astype(dtype)
    classes = np.arange(10)

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(x, y, classes=classes)  # one pass over the shuffled training set
        clf.predict(xv)

    return run


def interleaved(variants: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():  # warm-up: caches, workspaces, lazy imports
        run()
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def _parallel_worker(threads: int, epochs: int, barrier, results) -> None:
    from pipeline.train import compose, load_data, to_config

    data = load_data(to_config(compose(["tracking=none"])))
    with threadpool_limits(threads):
        run = ours_epoch(data, "tanh", "float32")
        run()
        barrier.wait()
        start = time.perf_counter()
        for _ in range(epochs):
            run()
        results.put((start, time.perf_counter()))


def throughput(processes: int, threads: int, epochs: int) -> float:
    """Epochs per second of ``processes`` simultaneous runs with ``threads`` BLAS threads each."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_parallel_worker, args=(threads, epochs, barrier, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    spans = [results.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return processes * epochs / wall


def tracking_overhead(rounds: int, epochs: int = 10) -> str:
    """Whole runs of the ReLU preset with MLflow tracking into a scratch store and without,
    interleaved: the cost per epoch (the hook) and per run (start, artifacts) separately."""
    import tempfile

    from pipeline.train import compose, run, to_config

    times: dict[str, list[float]] = {"tracked": [], "untracked": []}
    epoch_s: dict[str, list[float]] = {"tracked": [], "untracked": []}
    with tempfile.TemporaryDirectory() as tmp:
        common = [
            "experiment=relu",
            f"trainer.epochs={epochs}",
            f"trainer.patience={epochs}",
            "trainer.progress=false",
        ]
        configs = {
            "tracked": [*common, f"tracking.uri=sqlite:///{tmp}/mlflow.db"],
            "untracked": [*common, "tracking=none"],
        }
        for name in configs:  # warm-up: imports, database migrations
            run(to_config(compose(configs[name])))
        for _ in range(rounds):
            for name, overrides in configs.items():
                start = time.perf_counter()
                result = run(to_config(compose(overrides)))
                times[name].append(time.perf_counter() - start)
                epoch_s[name] += [h["epoch_seconds"] for h in result.history]
    total = {k: statistics.median(v) for k, v in times.items()}
    per_epoch = {k: statistics.median(v) for k, v in epoch_s.items()}
    return (
        f"tracking overhead, ReLU preset, {epochs} epochs, median of {rounds}: run "
        f"{total['tracked']:.2f}s tracked vs {total['untracked']:.2f}s untracked "
        f"(ratio {total['tracked'] / total['untracked']:.3f}); epoch "
        f"{per_epoch['tracked']:.4f}s vs {per_epoch['untracked']:.4f}s "
        f"(ratio {per_epoch['tracked'] / per_epoch['untracked']:.3f})"
    )


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from pipeline.train import compose, load_data, to_config

    parser = argparse.ArgumentParser(description="seconds per epoch: ours, floor, PyTorch, sklearn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tanh float32 and softmax only")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument(
        "--tracking-only", action="store_true", help="only the MLflow tracking overhead"
    )
    args = parser.parse_args(argv)
    if args.tracking_only:
        print(tracking_overhead(args.rounds))
        return
    data = load_data(to_config(compose(["tracking=none"])))
    data64 = replace(
        data,
        train=replace(
            data.train, x=data.train.x.astype(np.float64), t=data.train.t.astype(np.float64)
        ),
        val=replace(data.val, x=data.val.x.astype(np.float64), t=data.val.t.astype(np.float64)),
    )
    models = ["softmax", "tanh"] if args.quick else ["softmax", "tanh", "sigmoid", "relu"]
    dtypes = ["float32"] if args.quick else ["float32", "float64"]
    rows = []
    for threads in (1, 2):
        for dtype in dtypes:
            d = data if dtype == "float32" else data64
            for model in models:
                sizes = [784, 10] if model == "softmax" else [784, 128, 10]
                prods = products(sizes, len(d.train), len(d.val))
                candidates = {
                    "ours": ours_epoch(d, model, dtype),
                    "floor": floor_epoch(prods, dtype),
                    "pytorch": torch_epoch(d, model, dtype),
                    "sklearn": sklearn_epoch(d, model, dtype),
                }
                variants = {k: v for k, v in candidates.items() if v is not None}
                with threadpool_limits(threads):
                    if "pytorch" in variants:
                        import torch

                        torch.set_num_threads(threads)
                    times = interleaved(variants, args.rounds)
                med = {k: statistics.median(v) for k, v in times.items()}
                row = {
                    "model": model,
                    "dtype": dtype,
                    "threads": threads,
                    "gflop": round(gflop(prods), 2),
                }
                for name, values in times.items():
                    row[f"{name}_s"] = round(med[name], 4)
                    row[f"{name}_spread"] = f"{min(values):.3f}-{max(values):.3f}"
                row["ours_gflops"] = round(gflop(prods) / med["ours"], 1)
                row["ours/floor"] = round(med["ours"] / med["floor"], 2)
                for other in ("pytorch", "sklearn"):
                    if other in med:
                        row[f"ours/{other}"] = round(med["ours"] / med[other], 2)
                rows.append(row)
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows)
    rates: dict[str, list[float]] = {"2 runs x 1 thread": [], "1 run x 2 threads": []}
    for _ in range(3):  # interleaved, like the rest
        rates["2 runs x 1 thread"].append(throughput(2, 1, 5))
        rates["1 run x 2 threads"].append(throughput(1, 2, 5))
    parallel, single = (statistics.median(v) for v in rates.values())
    summary = (
        tracking_overhead(3)
        + "\n\n"
        + (
            f"tanh float32 throughput, median of 3: 2 runs x 1 thread {parallel:.2f} epochs/s, "
            f"1 run x 2 threads {single:.2f} epochs/s, ratio {parallel / single:.2f}"
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "bench.csv", index=False)
    (args.out / "bench.md").write_text(table.to_markdown(index=False) + f"\n\n{summary}\n")
    print(table.to_markdown(index=False))
    print(summary)
    print(f"written to {args.out}/bench.md and bench.csv")


if __name__ == "__main__":
    main()
