"""Training runs by the dozen: reused when a FINISHED run holds the same computation, else
trained by the command's launcher (``sweeps.launchers``: a pool of processes here, or
submitit jobs), each run a child of its group's parent run.

A job is a list of training overrides and the group it belongs to ("relu", "l2 scale=sum").
Two runs are the same computation when their config hash (every training key), data digest
and core code version agree; only FINISHED runs are reused. The pool runs one process per
core with one BLAS thread each (the benchmark's best throughput), longest jobs first, and its
workers die with it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline import cli, train
from pipeline.config import TrainConfig, to_config
from pipeline.tracking import store
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.provenance import identity
from pipeline.tracking.runs import end_status, find_finished, run_artifact
from sweeps import launchers

Key = tuple[str, int]  # (group, seed)
# Runs that back a table rather than being looked at one by one (re-runs over seeds, the joint
# test, tuned winners) skip the per-run figures (0.5-1.5 s each; the MLflow UI draws their
# curves from the metrics), and those of the forensic and joint tests the MLflow model too
# (their weights stay in model.npz). Tracking keys are not part of a run's identity.
NO_FIGURES = ("tracking.figures=false",)
EVIDENCE_ONLY = (*NO_FIGURES, "tracking.model=false")
RESULT_METRICS = ("test_accuracy", "test_loss", "best_epoch", "stopped_epoch", "best_val_loss")


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    overrides: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    parent: str | None = None  # the run its group hangs under (a study's), if not the default

    def config(self) -> TrainConfig:
        return to_config(train.compose(self.overrides))


def _train(
    overrides: tuple[str, ...], tags: dict, threads: int | None, parent: str, force: bool
) -> str:
    """In a pool worker: one training run, recorded in MLflow; returns its run id. Two
    commands wanting the same run (two reports at once) train it once: each claims it under
    a lock first, and the one that waited reuses what the other trained."""
    cfg = to_config(train.compose(overrides))
    cfg.trainer.threads = threads
    cfg.trainer.progress = False
    same = identity(cfg)
    key = hashlib.sha256(" ".join(f"{k}={v}" for k, v in sorted(same.items())).encode())
    claims = store.local_folder(cfg.tracking.uri) / "claims"
    with store.file_lock(claims / f"{key.hexdigest()[:24]}.lock"):
        found = None if force else find_finished(cfg.tracking.uri, cfg.tracking.experiment, same)
        if found:
            return found
        with cli.job():
            return train.run(cfg, (), tags, parent).run_id


def group_parent(
    cfg: TrainConfig, group: str, tags: dict[str, str], parent: str | None
) -> ParentRun:
    """The parent run of a group of seeds: found by its identity (so every report and every
    resumption shares it), or created; under ``parent`` (a report, a study) if given."""
    same = {**identity(cfg), "config_hash": cfg.training_hash(without=("trainer.seed",))}
    same["kind"] = "group"
    client, experiment_id = store.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    terms = " and ".join(f"tags.`{k}` = '{v}'" for k, v in same.items())
    found = client.search_runs([experiment_id], terms, max_results=1)
    run = ParentRun(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        group,
        {**tags, **same},  # a group is kind "group", whatever its runs are
        join_run_id=found[0].info.run_id if found else None,
        export=False,
    )
    if parent:
        client.set_tag(run.run_id, "mlflow.parentRunId", parent)
    return run


def ensure(
    jobs: dict[Key, Job], workers: int, force: bool = False, parent: str | None = None
) -> tuple[dict[Key, str], dict[Key, str], int]:
    """A FINISHED run for every job: reused, or trained now. Returns the run ids, the errors
    of the jobs that failed, and how many runs were reused."""
    configs = {key: job.config() for key, job in jobs.items()}
    done: dict[Key, str] = {}
    for key, cfg in configs.items():
        found = (
            None
            if force
            else find_finished(cfg.tracking.uri, cfg.tracking.experiment, identity(cfg))
        )
        if found:
            done[key] = found
    todo = {k: j for k, j in jobs.items() if k not in done}
    log.info(f"{len(done)} of {len(jobs)} runs reused, training {len(todo)}")
    if not todo:
        return done, {}, len(done)
    firsts = {key[0]: key for key in reversed(list(todo))}  # one parent per group, not per seed
    parents = {
        group: group_parent(configs[key], group, jobs[key].tags, jobs[key].parent or parent)
        for group, key in firsts.items()
    }
    try:
        ids = {g: p.run_id for g, p in parents.items()}
        trained, errors = _pool(todo, configs, workers, ids, force)
    except BaseException as err:
        for p in parents.values():
            p.end(end_status(err))
        raise
    for p in parents.values():
        p.end("FINISHED")
    return {**done, **trained}, errors, len(done)


def _pool(
    todo: dict[Key, Job],
    configs: dict[Key, TrainConfig],
    workers: int,
    parents: dict[str, str],
    force: bool,
) -> tuple[dict[Key, str], dict[Key, str]]:
    trained: dict[Key, str] = {}
    errors: dict[Key, str] = {}
    threads = launchers.current().threads or (1 if workers > 1 else None)
    # longest first: networks with hidden layers before softmax regression
    order = sorted(todo, key=lambda k: (not configs[k].model.hidden, k))
    calls = [(todo[k].overrides, todo[k].tags, threads, parents[k[0]], force) for k in order]
    start = time.monotonic()
    for i, run_id, error in launchers.completed(_train, calls, workers):
        key = order[i]
        if error is None:
            trained[key] = run_id
            status = "done"
        else:
            errors[key] = error
            status = f"FAILED ({error})"
        elapsed = time.monotonic() - start
        n = len(trained) + len(errors)
        log.info(
            f"[{n}/{len(todo)}] {key[0]} seed {key[1]} {status}  {elapsed:.0f}s "
            f"elapsed, ~{elapsed / n * (len(todo) - n):.0f}s left"
        )
    return trained, errors


def collect(
    run_ids: dict[Key, str], uri: str | None, weights: bool = False, histories: bool = True
) -> tuple[pd.DataFrame, dict[Key, pd.DataFrame], dict[Key, np.ndarray]]:
    """Metrics (read in one query), per-epoch history and the weights of every run from MLflow
    (the last two on request: each is a download)."""
    from pipeline.artifacts import load_model

    client = store.client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    ids = sorted(set(run_ids.values()))
    found = {}
    for i in range(0, len(ids), 100):  # one query per hundred runs, not one per run
        listed = ", ".join(f"'{r}'" for r in ids[i : i + 100])
        for run in client.search_runs(
            experiments, f"attributes.run_id IN ({listed})", max_results=100
        ):
            found[run.info.run_id] = run
    rows: list[dict[str, Any]] = []
    history: dict[Key, pd.DataFrame] = {}
    thetas: dict[Key, np.ndarray] = {}
    for (group, seed), run_id in sorted(run_ids.items()):
        run = found[run_id]
        rows.append(
            {"group": group, "seed": seed, "run_id": run_id}
            | {k: run.data.metrics.get(k, np.nan) for k in RESULT_METRICS}
            | {"parent": run.data.tags.get("mlflow.parentRunId")}
        )
        if histories:
            history[group, seed] = pd.read_csv(run_artifact(run_id, "history.csv", uri))
        if weights:
            net = load_model(run_artifact(run_id, "model.npz", uri))
            thetas[group, seed] = net.theta[: net.n_weights].copy()
    return pd.DataFrame(rows), history, thetas
