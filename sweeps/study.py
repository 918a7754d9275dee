"""An Optuna study over the training config: budget, trials, workers.

Optuna drives Hydra's compose API directly (the ``hydra-optuna-sweeper`` plugin pins Optuna 2
and cannot prune). A sweep is one study, or, when its space names ``groups``, one sub-study per
group value, each with its own budget. Every trial composes the training config with the
command line's training overrides plus its sampled values, trains with an epoch hook that
reports the validation metric and prunes, and is a child MLflow run of the sweep's parent run.

Trials are asked for under the study's lock (``storage.lock``) after counting what is done and
running, so budgets are exact with any number of launchers; a study remembers the settings it
was made with and refuses to be resumed with others.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline import cli, train
from pipeline.tracking.runs import is_interrupt
from pipeline.tracking.store import StoreError, mask
from sweeps import budget, launchers, space, storage
from sweeps.best import best_trial
from sweeps.objective import DistancePruner, Objective, run_trial
from sweeps.settings import Part, Settings, compose_trial, differences, fingerprint
from sweeps.space import SweepError

log = logging.getLogger(__name__)


def make_pruner(s: Settings, max_epochs: int) -> optuna.pruners.BasePruner:
    pruner = _pruner(s, max_epochs)
    return Owed(pruner, s.n_trials, s.min_complete) if s.min_complete else pruner


class Owed(optuna.pruners.BasePruner):
    """Prunes as ``inner`` does until a part's budget has no trial to spare: when the trials
    running and not yet started are no more than the complete ones it still owes, every one of
    them runs out, so ``min_complete`` is reached within ``n_trials`` (unless trials fail)."""

    def __init__(self, inner: optuna.pruners.BasePruner, n_trials: int, owed: int) -> None:
        self.inner, self.n_trials, self.owed = inner, n_trials, owed

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        unstarted = self.n_trials - sum(storage.counted(t) for t in trials) - running
        if running + max(unstarted, 0) <= self.owed - complete:
            return False
        return self.inner.prune(study, trial)


def _pruner(s: Settings, max_epochs: int) -> optuna.pruners.BasePruner:
    if s.pruner == "distance":
        return DistancePruner(s.target)
    if s.pruner == "median":  # prune below the median of earlier trials at the same epoch,
        # from epoch 5 on: a large learning rate leads at epoch 2 and often loses by epoch 10
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=5)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2, max_resource=max_epochs)
    if s.pruner == "threshold":
        bound = {"upper" if s.direction == "minimize" else "lower": s.threshold}
        return optuna.pruners.ThresholdPruner(**bound)
    return optuna.pruners.NopPruner()


def make_sampler(s: Settings, number: int) -> optuna.samplers.BaseSampler:
    """The sampler of trial ``number``: seeded from the study's seed and the trial's number,
    so every trial draws its own samples, whichever launcher or worker asks for it (a grid is
    enqueued, see ``enqueue_grid``: each ask takes the next one, whatever the seed)."""
    seed = s.seed + number
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
    return optuna.samplers.RandomSampler(seed=seed)


def open_study(
    s: Settings,
    part: Part,
    max_epochs: int,
    storage_obj: optuna.storages.BaseStorage | None = None,
) -> optuna.Study:
    return optuna.create_study(
        study_name=part.name,
        storage=storage_obj or storage.open_storage(s.storage),
        sampler=make_sampler(s, 0),  # replaced at every ask (``next_trial``)
        pruner=make_pruner(s, max_epochs),
        direction=s.direction,
        load_if_exists=True,
    )


def resume(s: Settings, max_epochs: int) -> list[tuple[Part, optuna.Study]]:
    """Open (or create) every part, refuse one made with other settings, fail its stale
    trials, and print where each stands."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = []
    for part in s.parts():
        study = open_study(s, part, max_epochs)
        wanted = fingerprint(s, part)
        with storage.lock(s.storage, study._storage, part.name):
            known = study.user_attrs.get("settings")
            if known is None:
                study.set_user_attr("settings", wanted)
                with warnings.catch_warnings():  # optuna-dashboard shows the objective's name
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names([s.objective])
            elif known != wanted:
                diff = "; ".join(differences(known, wanted))
                raise SweepError(
                    f"study {part.name!r} was made with other settings ({diff}): run it with "
                    "those, or start a new study with study.name=<new name>"
                )
            storage.fail_stale(study)
            if s.sampler == "grid":
                enqueue_grid(s, study)
        trials = study.get_trials(deepcopy=False)
        log.info(f"{part.name}: {budget.budget_line(trials, s)}")
        opened.append((part, study))
    return opened


def enqueue_grid(s: Settings, study: optuna.Study) -> None:
    """Enqueue the combinations of the space not yet done, running or waiting (under the
    study's lock, so two launchers enqueue them once): all of them, in the space's order, or,
    when the grid is larger than ``n_trials``, a seeded random sample of distinct ones, kept
    in that order."""
    _, sampled = s.space()
    combos = list(space.corners(sampled, {}))
    if len(combos) > s.n_trials:
        chosen = np.random.default_rng(s.seed).permutation(len(combos))[: s.n_trials]
        combos = [combos[int(i)] for i in sorted(chosen)]
    present = [
        t.params or t.system_attrs.get("fixed_params", {})  # a waiting trial has only these
        for t in study.get_trials(deepcopy=False)
        if storage.counted(t) or t.state in (TrialState.RUNNING, TrialState.WAITING)
    ]
    for combo in combos:
        if combo not in present:
            study.enqueue_trial(combo)


def next_trial(s: Settings, study: optuna.Study, part: Part) -> optuna.Trial | None:
    """Count and ask under the study's lock: the budget holds across launchers, and the new
    trial's number (the count of trials so far, which only this lock's holder can change)
    seeds its sampler, so two launchers never draw the same point."""
    with storage.lock(s.storage, study._storage, part.name):
        storage.fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        if not budget.wants_more(trials, s):
            return None
        study.sampler = make_sampler(s, len(trials))
        with warnings.catch_warnings():  # our own loop beats for the trial (``storage.own``)
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            trial = study.ask()
        try:
            storage.own(study, trial)
        except BaseException:  # interrupted before it began: it runs again
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        return trial


@dataclass(frozen=True)
class Task:
    """A study to work on: its settings, the MLflow run its trials hang under, its longest
    training (for the hyperband pruner)."""

    s: Settings
    parent_run_id: str | None
    max_epochs: int


def work(tasks: Sequence[Task], worker: int) -> None:
    """Run trials of every part of every task, in order, until each budget is spent (this
    process's share: other workers take trials from the same budgets)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for task in tasks:
        s = task.s
        shared = storage.open_storage(s.storage)
        for part in s.parts():
            study = open_study(s, part, task.max_epochs, shared)
            objective = Objective(s, part, task.parent_run_id)
            train.load_data(compose_trial(s, part.fixed))  # once per process, before the trials
            while (trial := next_trial(s, study, part)) is not None:
                frozen = run_trial(study, trial, objective)
                value = f" {s.objective} {frozen.value:.4f}" if frozen.value is not None else ""
                where = budget.budget_line(study.get_trials(deepcopy=False), s)
                log.info(
                    f"[worker {worker}] {part.name.split(':', 1)[-1]} #{frozen.number} "
                    f"{frozen.state.name}{value}  |  {where}  |  best {best_text(study)}"
                )
                if objective.outbox:
                    raise StoreError(train.outbox_message(objective.outbox))


def best_text(study: optuna.Study) -> str:
    best = best_trial(study)
    return f"{best.value:.4f}" if best else "-"


def _worker(tasks: list[Task], worker: int, parent_pid: int, log_file: str | None) -> None:
    """A spawned worker: dies with its parent, logs as it does; an interrupt ends it quietly
    (the parent speaks for the sweep), an error is one line."""
    cli.die_with_parent(parent_pid)
    cli.worker_logging(log_file)
    try:
        with cli.interrupts():
            work(tasks, worker)
    except cli.ONE_LINE_ERRORS as err:
        sys.exit(f"error: [worker {worker}] {mask(str(err))}")
    except (KeyboardInterrupt, Exception) as err:
        if not is_interrupt(err):
            raise
        sys.exit(130)


def _job(tasks: list[Task], worker: int) -> str | None:
    """A submitit job's share of the studies: None, or what stopped it in one line."""
    try:
        work(tasks, worker)
    except cli.ONE_LINE_ERRORS as err:
        return f"[worker {worker}] {mask(str(err))}"
    return None


def run_workers(tasks: list[Task], workers: int) -> None:
    """Run the studies here (one worker), in ``workers`` spawned processes, or in ``workers``
    jobs of the command's launcher, that go through them in order; budgets are shared through
    the storage, so the split needs no planning and no worker idles while another finishes a
    study."""
    launcher = launchers.current()
    if launcher.name != "local":
        errors = launchers.run_all(launcher, _job, [(tasks, i) for i in range(workers)])
        if errors:
            raise cli.WorkFailed("; ".join(errors))
        return
    if workers == 1:
        work(tasks, 0)
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked BLAS threads
    procs = [
        context.Process(target=_worker, args=(tasks, i, os.getpid(), cli.job_log()))
        for i in range(workers)
    ]
    # a worker still starting (importing) would die of Ctrl-C with multiprocessing's traceback:
    # it starts with SIGINT ignored (inherited through exec) until its own handler takes over
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for p in procs:
            p.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        for p in procs:
            p.join()
    finally:  # an interrupt or error here: the workers end their trials, then we go on
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(60)
            if p.is_alive():
                p.kill()
    if any(p.exitcode == 130 for p in procs):
        raise KeyboardInterrupt
    if any(p.exitcode and p.exitcode > 0 for p in procs):
        raise SystemExit(1)  # each failed worker has said why in one line
    for i, p in enumerate(procs):
        if p.exitcode:  # killed by a signal: its trial is failed and runs again
            log.warning(f"warning: worker {i} was ended by {signal.Signals(-p.exitcode).name}")
    if any(p.exitcode for p in procs) and any(unfinished(task) for task in tasks):
        raise cli.WorkFailed("the study is not complete: run the same command again to finish it")


def unfinished(task: Task) -> bool:
    shared = storage.open_storage(task.s.storage)
    return any(
        budget.wants_more(open_study(task.s, part, task.max_epochs, shared).get_trials(), task.s)
        for part in task.s.parts()
    )


@dataclass
class Ran:
    """A study after its trials: its settings, its parts and their Optuna studies, and its
    MLflow parent run."""

    s: Settings
    studies: list[tuple[Part, optuna.Study]]
    parent_run_id: str | None


def run_studies(many: Sequence[Settings], workers: int, parent: str | None = None) -> list[Ran]:
    """Resume every study, give each its MLflow parent run (under ``parent``), and run them
    all with one set of workers, which go from one study to the next without waiting."""
    from sweeps import record

    ran: list[Ran] = []
    with contextlib.ExitStack() as stack:
        for s in many:
            cfg = train.config(s.base_overrides)
            opened = resume(s, cfg.trainer.epochs)
            run = stack.enter_context(record.study_run(s, opened, cfg))
            if run and parent:
                run.client.set_tag(run.run_id, "mlflow.parentRunId", parent)
            ran.append(Ran(s, opened, run and run.run_id))
        tasks = [
            Task(r.s, r.parent_run_id, train.config(r.s.base_overrides).trainer.epochs)
            for r in ran
            if any(
                budget.wants_more(study.get_trials(deepcopy=False), r.s) for _, study in r.studies
            )
        ]
        if tasks:  # a complete study spawns no worker (a warm report starts none)
            run_workers(tasks, workers)
    return ran
