"""What every command shares: one-line errors, interrupts, unique output folders, masked
secrets in Hydra's saved files, and worker processes that die with their parent.

Every entry point (``pipeline.train``, ``pipeline.gradcheck``, ``sweeps``, ``sweeps.report``,
``sweeps.forensics``) runs its body through ``command``: a bad setting or an unusable store is
one line on stderr and exit status 1, never a traceback; Ctrl-C, SIGTERM and SIGHUP (a closed
terminal) are one line too, after every open record has been ended KILLED.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.compose import share_searchpath
from pipeline.config import CONF_DIR, ConfigError, TrainConfig
from pipeline.data import DataError
from pipeline.fit import Diverged
from pipeline.tracking.runs import is_interrupt
from pipeline.tracking.store import StoreError, mask


class WorkFailed(RuntimeError):
    """The command ran, but part of its work failed; the message says which (one line)."""


ONE_LINE_ERRORS = (ConfigError, DataError, StoreError, Diverged, WorkFailed)
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
T = TypeVar("T")


def _groups(*skip: str) -> str:
    """The config groups a command's ``--help`` lists, with their options (``${groups:sweep}``
    leaves out the sweep spaces of a command that has none)."""
    lines = []
    for folder in sorted(p for p in Path(CONF_DIR).iterdir() if p.is_dir()):
        if folder.name not in (*skip, "hydra"):
            options = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
            lines.append(f"  {folder.name:<12} {options}")
    return "\n".join(lines)


def hydra_message(err: BaseException) -> str | None:
    """One line for what Hydra reports itself (before or around our code): an override it
    cannot read, a config file that does not parse, a launcher that cannot start. None for
    anything else, which keeps Hydra's traceback (a bug deserves one)."""
    import yaml
    from hydra.errors import HydraException, OverrideParseException

    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    text = text.split(" Config search path:")[0]  # Hydra's list of where it looked
    if isinstance(err, OverrideParseException):
        return (
            f"cannot read the override {err.override!r} ({err.message.splitlines()[0]}): quote a "
            "value holding spaces, unicode or shell characters, e.g. 'key=\"a value\"' (the "
            "single quotes keep the shell away from it)"
        )
    if isinstance(err, yaml.YAMLError):
        return f"a config file does not parse: {text}"
    if 'Could not detect "srun"' in text:
        return (
            "hydra/launcher=submitit_slurm needs a SLURM cluster (srun, sbatch): here use "
            "hydra/launcher=submitit_local or the default launcher"
        )
    if isinstance(err, HydraException | OmegaConfBaseException):
        return text
    return None


def one_line_hydra_errors() -> None:
    """Have Hydra report what ``hydra_message`` knows as ``error: ...``, one line, exit 1
    (Hydra prints a traceback, or 4-5 lines, for those). HYDRA_FULL_ERROR=1 still shows all."""
    from hydra._internal import utils

    report = utils.run_and_report

    def run_and_report(func: Any) -> Any:
        try:
            return func()
        except Exception as err:
            message = None if os.environ.get("HYDRA_FULL_ERROR") == "1" else hydra_message(err)
            if message is not None:
                sys.exit(f"error: {mask(message)}")
            failed = err

        def again() -> Any:
            raise failed

        return report(again)  # Hydra's own report

    utils.run_and_report = run_and_report


one_line_hydra_errors()  # every command imports this module before Hydra starts


# set by a group's option (data=, optimizer=, regularizer=, tracking=none) or bookkeeping
_NOT_KEYS = {"name", "kind", "enabled", "files", "sha256"}


def _keys() -> str:
    """The training keys a user changes, by group, for ``--help`` (``${keys:}``); the full
    config, digests and all, is ``--cfg job``'s."""
    lines = []
    for group in fields(TrainConfig):
        if is_dataclass(group.default_factory):
            keys = [f.name for f in fields(group.default_factory) if f.name not in _NOT_KEYS]
            lines.append(f"  {group.name:<12} {' '.join(keys)}")
    return "\n".join(lines)


OmegaConf.register_new_resolver("groups", _groups, replace=True)
OmegaConf.register_new_resolver("keys", _keys, replace=True)
# hydra.run.dir ends in the pid: commands started in the same second get their own folders.
# Cached like ${now:}, so a multirun's jobs (in other processes too) share the launcher's.
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)


def _ignore_repeats() -> None:
    """After the first signal, later ones do nothing. A Python no-op, not SIG_IGN: a signal
    already pending would otherwise raise "ignored due to race condition"."""
    for s in SIGNALS:
        signal.signal(s, lambda signum, frame: None)


@contextmanager
def interrupts() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP raise one KeyboardInterrupt in the main thread; repeats are
    ignored while the command ends its records, so nothing is left RUNNING half-closed."""

    def handler(signum: int, frame: Any) -> None:
        _ignore_repeats()
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def command(body: Callable[[], T], interrupted: str) -> T:
    """Run a command's body: known errors become ``error: ...`` and an interrupt becomes
    ``interrupted: <interrupted>``, each one line on stderr with exit status 1."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        share_searchpath()  # before any worker starts
    try:
        with interrupts():
            return body()
    except ONE_LINE_ERRORS as err:
        sys.exit(f"error: {mask(str(err))}")
    except (KeyboardInterrupt, Exception) as err:
        if not is_interrupt(err):
            raise
        sys.exit(f"interrupted: {interrupted}")


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM to this worker when its parent dies, however it dies
    (Linux); the worker then ends its records as an interrupt would."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's own cleanup must do
        return
    if os.getppid() != parent_pid:  # the parent died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


class QuietLauncher(logging.Filter):
    """A logging filter (``conf/hydra/hydra_logging``): the joblib launcher's banner (every
    setting of ``joblib.Parallel``, none set by a user) is dropped; the jobs' list stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Joblib.Parallel(")


class MaskSecrets(Callback):
    """Hydra callback: the config, overrides and Hydra settings it saves for each job (and for
    a multirun) hold URLs with their password masked, like every other output."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        if hydra.output_subdir is not None:
            self._mask_files(Path(hydra.runtime.output_dir) / hydra.output_subdir)
        if hydra.mode == RunMode.MULTIRUN:  # multirun.yaml, written before the first job
            self._mask_files(Path(hydra.sweep.dir))

    @staticmethod
    def _mask_files(folder: Path) -> None:
        for path in folder.glob("*.yaml"):
            text = path.read_text()
            if mask(text) != text:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(mask(text))
                os.replace(tmp, path)


class StaleAfter(Callback):
    """Hydra callback: ``tracking.stale_after`` becomes this process's timeout (and that of
    the workers and jobs it starts) before any store is opened; a bad value is left to the
    config's validation, which refuses it in one line."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from pipeline.tracking import lifecycle

        value = OmegaConf.select(config, "tracking.stale_after")
        if isinstance(value, int | float) and not isinstance(value, bool):
            lifecycle.set_stale_after(value)


_busy = False  # a pool worker is running a job (see ``pool_worker``)


def pool_worker(parent_pid: int, log_file: str | None = None) -> None:
    """Initializer of a process-pool worker: it dies with its parent, logs as it does; a
    signal interrupts the job at hand (its run ends KILLED, once) and ends an idle worker
    without a word."""
    die_with_parent(parent_pid)
    worker_logging(log_file)

    def handler(signum: int, frame: Any) -> None:
        _ignore_repeats()
        if _busy:
            raise KeyboardInterrupt(signal.Signals(signum).name)
        os._exit(130)

    for s in SIGNALS:
        signal.signal(s, handler)


@contextmanager
def job() -> Iterator[None]:
    """A pool worker's job: signals interrupt it (see ``pool_worker``)."""
    global _busy
    _busy = True
    try:
        yield
    finally:
        _busy = False


def job_log() -> str | None:
    """The running Hydra job's log file, which workers append to (None outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    return str(Path(hydra.runtime.output_dir) / f"{hydra.job.name}.log")


def worker_logging(log_file: str | None) -> None:
    """A spawned worker logs as its command does: plain lines on the console, and into the
    command's job log (appended; a line is one write)."""
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    handlers: list[logging.Handler] = [console]
    if log_file:
        file = logging.FileHandler(log_file)
        file.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
        handlers.append(file)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    for noisy in ("mlflow", "alembic", "optuna", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # see conf/hydra/job_logging
