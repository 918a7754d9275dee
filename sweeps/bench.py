"""What a sweep costs outside training, and how its throughput scales with workers.

    python -m sweeps.bench [--rounds 3] [--trials 16] [--out reports/bench]

1. Overhead: a sweep on full MNIST whose trials stop after 1-3 epochs (a threshold pruner and
   at most three epochs), one worker: the share of its wall time spent outside ``fit.train``
   (composing configs, MLflow runs, artifacts, the study's storage).
2. Workers: complete trials per minute of ``workers=2`` (one BLAS thread each) against
   ``workers=1`` with two BLAS threads, the same total threads, and against ``workers=1`` with
   one thread, whose double bounds what two workers can reach; fresh studies, interleaved.

Each is a real ``python -m sweeps`` command on scratch stores; timings are never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from pipeline.config import ROOT
from sweeps import storage

COMMON = ["sweep=lr_activation", "sweep.groups=[]", "study.name=bench", "trainer.progress=false"]


def sweep(tmp: Path, *args: str) -> tuple[float, list[optuna.trial.FrozenTrial]]:
    """Run one sweep on fresh stores in ``tmp``; return its wall time and its trials."""
    journal = f"journal:{tmp}/studies.journal"
    cmd = [
        sys.executable,
        "-m",
        "sweeps",
        *COMMON,
        f"tracking.uri=sqlite:///{tmp}/mlflow.db",
        f"study.storage={journal}",
        f"hydra.run.dir={tmp}/hydra",
        *args,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    study = optuna.load_study(study_name="bench", storage=storage.open_storage(journal))
    return wall, study.trials


def overhead(trials: int, rounds: int) -> dict[str, float]:
    """Share of a short-trial sweep's trial loop (first trial's start to last trial's end)
    spent outside training; the command's own start (imports, checks, stores) and its summary
    are measured apart."""
    shares, per_trial, fixed, pruned = [], [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            wall, done = sweep(
                Path(tmp),
                f"n_trials={trials}",
                "trainer.epochs=3",
                "study.pruner=threshold",
                "study.threshold=0.2",
            )
        loop = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
        loop_s = loop.total_seconds()
        training = sum(t.user_attrs.get("train_seconds", 0.0) for t in done)
        shares.append(1 - training / loop_s)
        per_trial.append((loop_s - training) / len(done))
        fixed.append(wall - loop_s)
        pruned.append(sum(t.state.name == "PRUNED" for t in done) / len(done))
    return {
        "share of the trial loop outside fit": statistics.median(shares),
        "seconds outside fit per trial": statistics.median(per_trial),
        "command start and summary, seconds": statistics.median(fixed),
        "pruned share": statistics.median(pruned),
    }


def scaling(trials: int, rounds: int) -> dict[str, float]:
    """Complete trials per minute of the trial loop (first start to last end; each process's
    start is in the fixed cost above): two workers of one thread against one of two threads,
    and one of one thread, whose double is what two workers could reach at best."""
    setups = {
        "workers=1 threads=2": ["workers=1", "trainer.threads=2"],
        "workers=2 threads=1": ["workers=2", "trainer.threads=1"],
        "workers=1 threads=1": ["workers=1", "trainer.threads=1"],
    }
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, args in setups.items():
            with tempfile.TemporaryDirectory() as tmp:
                _, done = sweep(
                    Path(tmp), f"n_trials={trials}", "trainer.epochs=3", "study.pruner=none", *args
                )
            loop = max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
            complete = sum(t.state.name == "COMPLETE" for t in done)
            rates[name].append(complete / loop.total_seconds() * 60)
    two_threads, two_workers, one = (statistics.median(v) for v in rates.values())
    return {
        "workers=1 threads=2 trials/min": two_threads,
        "workers=2 threads=1 trials/min": two_workers,
        "workers=1 threads=1 trials/min": one,
        "ratio, two workers to one of two threads": two_workers / two_threads,
        "bound: two perfect one-thread workers to one of two threads": 2 * one / two_threads,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args(argv)
    lines = ["sweep overhead (full MNIST, trials stopped after 1-3 epochs, one worker):"]
    lines += [f"  {k}: {v:.3f}" for k, v in overhead(args.trials, args.rounds).items()]
    lines += ["worker scaling (full MNIST, 3-epoch trials, same total threads):"]
    lines += [f"  {k}: {v:.2f}" for k, v in scaling(args.trials, args.rounds).items()]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweeps.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
