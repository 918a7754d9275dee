"""An Optuna study over the training config: storage, sampler, pruner, objective, workers.

Optuna drives Hydra's compose API directly (the ``hydra-optuna-sweeper`` plugin pins Optuna 2
and cannot prune). Each trial composes the training config with the command line's training
overrides plus its sampled values, trains with an epoch hook that reports the validation metric
and raises ``StopTraining`` when the pruner says so, and is recorded as a child MLflow run of
the study's parent run. The study lives in persistent storage, so re-running the command
resumes it and only runs the trials still missing.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from pipeline import train
from pipeline.config import ROOT, ConfigError, TrainConfig, to_config
from pipeline.fit import Diverged, StopTraining
from pipeline.tracking import set_tags, tracking_uri
from sweeps import space

OBJECTIVES = {"val_loss": "minimize", "val_accuracy": "maximize"}
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "threshold", "none")


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs, as plain picklable values."""

    sweep: str
    params: dict[str, dict[str, Any]]
    base_overrides: tuple[str, ...]  # the command line's training overrides
    n_trials: int
    workers: int
    name: str
    storage: str  # an Optuna storage URL, or "journal:<path>"
    seed: int
    sampler: str
    pruner: str
    objective: str
    threshold: float

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]


def settings_from(cfg: Any, base_overrides: Sequence[str]) -> Settings:
    """Read and check the sweep settings of a composed ``sweeps.yaml``."""
    study = cfg.study
    name = study.name or f"{cfg.sweep.name}-{cfg.data.name}"
    checks = [
        ("n_trials", cfg.n_trials, cfg.n_trials >= 1, "an integer >= 1"),
        ("workers", cfg.workers, cfg.workers >= 1, "an integer >= 1"),
        ("study.sampler", study.sampler, study.sampler in SAMPLERS, f"one of {SAMPLERS}"),
        ("study.pruner", study.pruner, study.pruner in PRUNERS, f"one of {PRUNERS}"),
        (
            "study.objective",
            study.objective,
            study.objective in OBJECTIVES,
            f"one of {tuple(OBJECTIVES)}",
        ),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise space.SweepError(f"{key}={value!r} is invalid: expected {allowed}")
    journal = journal_folder(cfg.tracking.uri) / f"{name}.journal"
    return Settings(
        sweep=cfg.sweep.name,
        params={k: dict(v) for k, v in cfg.sweep.params.items()},
        base_overrides=tuple(base_overrides),
        n_trials=cfg.n_trials,
        workers=cfg.workers,
        name=name,
        storage=study.storage or f"journal:{journal}",
        seed=study.seed,
        sampler=study.sampler,
        pruner=study.pruner,
        objective=study.objective,
        threshold=study.threshold,
    )


def journal_folder(tracking: str | None) -> Path:
    """Studies live beside the MLflow store they report to: ``<store>/optuna/``."""
    uri = tracking_uri(tracking)
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / "optuna"
    return ROOT / "mlruns" / "optuna"


def open_storage(url: str) -> str | optuna.storages.BaseStorage:
    """``journal:<path>`` is a local journal file (safe for parallel processes); else a URL."""
    if not url.startswith("journal:"):
        return url
    from optuna.storages.journal import JournalFileBackend

    path = Path(url.removeprefix("journal:"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def make_pruner(s: Settings, max_epochs: int) -> optuna.pruners.BasePruner:
    if s.pruner == "median":  # prune below the median of earlier trials at the same epoch
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2, max_resource=max_epochs)
    if s.pruner == "threshold":
        bound = {"upper" if s.direction == "minimize" else "lower": s.threshold}
        return optuna.pruners.ThresholdPruner(**bound)
    return optuna.pruners.NopPruner()


def open_study(s: Settings, max_epochs: int, seed_offset: int = 0) -> optuna.Study:
    seed = s.seed + seed_offset  # each worker, and each resumption, draws its own samples
    sampler = (
        optuna.samplers.TPESampler(seed=seed, n_startup_trials=6)
        if s.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=seed)
    )
    return optuna.create_study(
        study_name=s.name,
        storage=open_storage(s.storage),
        sampler=sampler,
        pruner=make_pruner(s, max_epochs),
        direction=s.direction,
        load_if_exists=True,
    )


def resume(s: Settings, max_epochs: int) -> tuple[optuna.Study, int, int]:
    """Open (or create) the study; return it, how many trials are still missing to reach
    ``n_trials``, and how many it holds already (to seed the new ones apart)."""
    study = open_study(s, max_epochs)
    existing = study.get_trials(deepcopy=False)
    missing = max(s.n_trials - sum(counted(t) for t in existing), 0)
    print(
        f"study {s.name} ({s.storage}): {s.n_trials - missing} of {s.n_trials} trials done, "
        f"running {missing} with {s.workers} worker(s)",
        flush=True,
    )
    return study, missing, len(existing)


def counted(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that ran to an outcome: complete, pruned, or failed for a recorded reason.

    An interrupted trial (Ctrl-C, a killed worker) is not counted, so resuming runs it again.
    """
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "failed_reason" in trial.user_attrs


def compose_trial(s: Settings, values: dict[str, Any]) -> TrainConfig:
    cfg = to_config(train.compose([*s.base_overrides, *space.as_overrides(values)]))
    cfg.trainer.progress = False  # one line per trial (see ``progress``), not one per epoch
    if s.workers > 1 and cfg.trainer.threads is None:
        cfg.trainer.threads = 1  # two single-thread runs beat one two-thread run (bench)
    return cfg


def check(s: Settings) -> list[space.Param]:
    """Refuse a bad space before any trial: types, bounds, and every key against the config."""
    params = space.parse(s.sweep, s.params)
    for p in params:
        try:
            compose_trial(s, {p.key: p.example()})
        except ConfigError as err:
            raise space.SweepError(f"sweep.params.{p.key}: {err}") from None
        except Exception as err:  # Hydra's override errors: unknown key or group option
            first = str(err).splitlines()[0]
            raise space.SweepError(f"sweep.params.{p.key} is not a training key: {first}") from None
    return params


class Objective:
    """One trial: compose, train with pruning, record in MLflow, return the best epoch's metric."""

    def __init__(self, s: Settings, parent_run_id: str | None) -> None:
        self.s = s
        self.params = space.parse(s.sweep, s.params)
        self.parent_run_id = parent_run_id

    def __call__(self, trial: optuna.Trial) -> float:
        s = self.s
        cfg = compose_trial(s, space.sample(trial, self.params))
        cfg.tracking.run_name = f"{s.name}-trial{trial.number}"

        def report(epoch: int, metrics: dict[str, float]) -> None:
            trial.report(metrics[s.objective], epoch)
            if trial.should_prune():
                raise StopTraining(f"pruned at epoch {epoch}")

        tags = {"kind": "trial", "optuna.study": s.name, "optuna.trial": str(trial.number)}
        try:
            result = train.run(
                cfg,
                [report],
                tags,
                self.parent_run_id,
                on_start=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
            )
        except Diverged as err:  # a too-high learning rate: a result, not a crash
            trial.set_user_attr("failed_reason", str(err))
            self._tag(trial, cfg, {"optuna.state": "FAIL"})
            return float("nan")  # Optuna records the trial as FAIL and carries on
        best = result.history[result.best_epoch - 1]
        for key, value in {
            "test_accuracy": result.test_accuracy,
            "test_loss": result.test_loss,
            "best_epoch": result.best_epoch,
            "stopped_epoch": result.stopped_epoch,
            "val_accuracy": best["val_accuracy"],
            "val_loss": best["val_loss"],
            "train_seconds": result.seconds,
        }.items():
            trial.set_user_attr(key, value)
        if result.stop_reason.startswith("pruned"):
            pruned_at = str(len(result.history))
            self._tag(trial, cfg, {"optuna.state": "PRUNED", "optuna.pruned_epoch": pruned_at})
            raise optuna.TrialPruned(result.stop_reason)
        self._tag(trial, cfg, {"optuna.state": "COMPLETE"})
        return best[s.objective]

    @staticmethod
    def _tag(trial: optuna.Trial, cfg: TrainConfig, tags: dict[str, str]) -> None:
        """The trial's outcome on its MLflow run (known only once the run has ended)."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            set_tags(run_id, tags, cfg.tracking.uri)


def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial, n_trials: int) -> str:
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    done = sum(counted(t) for t in trials)
    try:
        best = f"{study.best_value:.4f}"
    except ValueError:
        best = "-"
    value = f" {trial.value:.4f}" if trial.value is not None else ""
    return (
        f"trial {trial.number:3d} {trial.state.name:8s}{value}  |  {done}/{n_trials} done: "
        f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.PRUNED)} pruned, "
        f"{states.count(TrialState.FAIL)} failed  |  best {best}"
    )


def work(
    s: Settings, n: int, seed_offset: int, worker: int, parent_run_id: str | None, max_epochs: int
) -> None:
    """Run ``n`` trials of the study in this process (a worker)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(s, max_epochs, seed_offset + 1000 * worker)
    study.optimize(
        Objective(s, parent_run_id),
        n_trials=n,
        callbacks=[
            lambda st, tr: print(f"[worker {worker}] {progress(st, tr, s.n_trials)}", flush=True)
        ],
    )


def run_workers(
    s: Settings, missing: int, existing: int, parent_run_id: str | None, max_epochs: int
) -> None:
    """Split the missing trials over ``s.workers`` processes (or run them here if one).

    Seeds differ per worker and per resumption (``existing`` trials so far), or the workers
    would draw the same samples.
    """
    shares = [missing // s.workers + (i < missing % s.workers) for i in range(s.workers)]
    shares = [n for n in shares if n]
    if len(shares) <= 1:
        work(s, missing, existing, 0, parent_run_id, max_epochs)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked BLAS threads
    procs = [
        context.Process(target=work, args=(s, n, existing, i, parent_run_id, max_epochs))
        for i, n in enumerate(shares)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} sweep worker(s) exited with codes {failed}")
