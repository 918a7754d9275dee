"""Where a sweep's or a report's workers run: here, or as jobs through submitit.

``launcher=local`` (the default) is a process pool on this machine. ``launcher=submitit_local``
runs every worker as a submitit job on this machine (what a cluster does, without one), and
``launcher=submitit_slurm`` submits them to SLURM: a sweep's workers as one job array (at most
``array_parallelism`` at once), a report's training runs as jobs, at most ``workers`` queued or
running at a time. Jobs share the study storage and the MLflow store with the launcher, so the
budgets and the parent runs work as they do for launchers on many machines; each job's log is
in ``launcher.folder``. The launcher is chosen once per command (``configure``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline import cli
from pipeline.config import ConfigError, resolve_path

log = logging.getLogger(__name__)
KINDS = ("local", "submitit_local", "submitit_slurm")
POLL_SECONDS = 1.0  # how often the launcher looks at its jobs' state files


@dataclass
class Launcher:
    """``launcher.*`` (``conf/launcher/``): the kind, and the SLURM settings of its jobs."""

    name: str = "local"
    folder: str = "outputs/jobs"  # submitit's pickles and each job's log (a shared filesystem)
    time: int = 60  # minutes a job may run
    partition: str | None = None
    cpus_per_task: int = 1  # a job's BLAS threads
    mem_gb: float = 4.0
    array_parallelism: int = 16  # a sweep's jobs running at once
    setup: list[str] = field(default_factory=list)  # shell lines before a job (module load...)

    @property
    def threads(self) -> int | None:
        """A job's BLAS threads (None: the local pool's own rule)."""
        return self.cpus_per_task if self.name == "submitit_slurm" else None


_current = Launcher()


def configure(node: Any) -> Launcher:
    """Type and check ``launcher.*`` (one line naming a bad key) and use it for this command."""
    global _current
    try:
        launcher: Launcher = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(Launcher), node or {})
        )
    except OmegaConfBaseException as err:
        raise ConfigError(f"launcher.{err.full_key}: {str(err).splitlines()[0]}") from None
    checks = [
        ("name", launcher.name, launcher.name in KINDS, f"one of {', '.join(KINDS)}"),
        ("time", launcher.time, launcher.time >= 1, "minutes >= 1"),
        ("cpus_per_task", launcher.cpus_per_task, launcher.cpus_per_task >= 1, "an integer >= 1"),
        ("mem_gb", launcher.mem_gb, launcher.mem_gb > 0, "a number > 0"),
        ("array_parallelism", launcher.array_parallelism, launcher.array_parallelism >= 1, ">= 1"),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"launcher.{key}={value!r} is invalid: expected {allowed}")
    _current = launcher
    return launcher


def current() -> Launcher:
    return _current


def executor(launcher: Launcher) -> Any:
    """A submitit executor for the launcher's jobs (their files named by job id)."""
    import submitit

    folder = resolve_path(launcher.folder)
    if launcher.name == "submitit_local":
        ex = submitit.LocalExecutor(folder)
        ex.update_parameters(timeout_min=launcher.time)
        return ex
    ex = submitit.SlurmExecutor(folder)
    ex.update_parameters(
        job_name="mnist-pipeline",
        time=launcher.time,
        cpus_per_task=launcher.cpus_per_task,
        mem=f"{launcher.mem_gb:g}GB",
        array_parallelism=launcher.array_parallelism,
        setup=list(launcher.setup),
        **({"partition": launcher.partition} if launcher.partition else {}),
    )
    return ex


def _in_job(launcher: Launcher, fn: Callable[..., Any], *args: Any) -> tuple[Any, str | None]:
    """A submitit job: its launcher's settings (a job's BLAS threads), plain log lines
    (submitit keeps its output in the job's folder), a signal (``scancel``, the end of its
    time) that ends its records KILLED, as a Ctrl-C would, and an error back as one line, as
    a pool's is: (result, None) or (None, error)."""
    global _current
    _current = launcher
    cli.worker_logging(None)
    try:
        with cli.interrupts():
            return fn(*args), None
    except Exception as err:
        return None, f"{type(err).__name__}: {err}"


def _failure(job: Any) -> str:
    """One line for a job that ended without a result: its id and where its log is."""
    return f"job {job.job_id} ended without a result ({job.state}): see {job.paths.stderr}"


def submit_all(launcher: Launcher, fn: Callable[..., Any], calls: Sequence[tuple]) -> list[Any]:
    """Submit ``fn(*call)`` for every call at once (on SLURM, one job array)."""
    n = len(calls)
    jobs = executor(launcher).map_array(_in_job, [launcher] * n, [fn] * n, *zip(*calls))
    ids = ", ".join(j.job_id for j in jobs)
    log.info(f"{len(jobs)} {launcher.name} jobs ({ids}), their logs in {jobs[0].paths.folder}")
    return jobs


def run_all(launcher: Launcher, fn: Callable[..., str | None], calls: Sequence[tuple]) -> list[str]:
    """Run ``fn(*call)`` for every call as jobs all submitted at once and wait for them;
    ``fn`` returns None or a one-line error. Returns the errors. An interrupt cancels every
    job (each ends its records KILLED, as a Ctrl-C would)."""
    jobs = submit_all(launcher, fn, calls)
    errors = []
    try:
        while not all(j.done() for j in jobs):
            time.sleep(POLL_SECONDS)
    except BaseException:
        for job in jobs:
            job.cancel(check=False)
        raise
    for job in jobs:
        try:
            value, error = job.result()
        except Exception:  # killed, out of time or memory: no result
            value, error = None, _failure(job)
        if value or error:
            errors.append(value or error)
    return errors


def completed(
    fn: Callable[..., Any], calls: Sequence[tuple], workers: int
) -> Iterator[tuple[int, Any, str | None]]:
    """``fn(*call)`` for every call, at most ``workers`` at a time, in the command's launcher:
    yields (index, result, None) or (index, None, one-line error) as each one ends."""
    if current().name == "local":
        yield from _pool(fn, calls, workers)
    else:
        yield from _jobs(current(), fn, calls, workers)


def _pool(fn: Callable[..., Any], calls: Sequence[tuple], workers: int) -> Iterator[tuple]:
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),  # fresh interpreters: no forked BLAS threads
        initializer=cli.pool_worker,
        initargs=(os.getpid(), cli.job_log()),
    ) as pool:
        pending: dict[Future, int] = {pool.submit(fn, *call): i for i, call in enumerate(calls)}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    i = pending.pop(future)
                    try:
                        yield i, future.result(), None
                    except Exception as err:
                        yield i, None, f"{type(err).__name__}: {err}"
        except KeyboardInterrupt:  # Ctrl-C reached the workers too; SIGTERM only us
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(pool._processes.values()):  # no public handle on them
                process.terminate()  # each ends its run KILLED
            raise


def _jobs(
    launcher: Launcher, fn: Callable[..., Any], calls: Sequence[tuple], workers: int
) -> Iterator[tuple]:
    ex = executor(launcher)
    todo = list(enumerate(calls))
    running: dict[int, Any] = {}
    try:
        while todo or running:
            while todo and len(running) < workers:
                i, call = todo.pop(0)
                running[i] = ex.submit(_in_job, launcher, fn, *call)
            for i, job in [(i, j) for i, j in running.items() if j.done()]:
                del running[i]
                try:
                    yield i, *job.result()
                except Exception:  # killed, out of time or memory: no result
                    yield i, None, _failure(job)
            if running:
                time.sleep(POLL_SECONDS)
    except BaseException:
        for job in running.values():
            job.cancel(check=False)
        raise
