"""Train one network: ``python -m pipeline.train experiment=relu optimizer.lr=0.05`` (``-m`` too).

``run`` is the Hydra-free part every caller shares (this CLI, the sweeps, the report): load the
data once per process, train, and record the run in MLflow when tracking is on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import hydra
from omegaconf import DictConfig

from pipeline import cli, fit
from pipeline.compose import compose, config, preset_settings  # noqa: F401 (used as train.*)
from pipeline.config import CONF_DIR, TrainConfig, to_config
from pipeline.data import Dataset, load
from pipeline.tracking.parents import short, swept_keys
from pipeline.tracking.store import StoreError, mask, open_experiment
from pipeline.tracking.ui import experiment_url

_datasets: dict[str, Dataset] = {}


log = logging.getLogger(__name__)


def training_overrides(overrides: Sequence[str], own_keys: set[str]) -> list[str]:
    """The command-line overrides meant for training: all but those whose top-level key
    belongs to the calling app (a sweep's ``n_trials``, the report's ``report.seeds``, Hydra's)."""
    return [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0] not in own_keys]


def load_data(cfg: TrainConfig) -> Dataset:
    """Load (and verify) a data set once per process: sweeps and reports train many times."""
    key = json.dumps([asdict(cfg.data), cfg.trainer.dtype], sort_keys=True)
    if key not in _datasets:
        _datasets[key] = load(cfg.data, cfg.trainer.dtype)
    return _datasets[key]


def progress_line(prefix: str = "") -> fit.EpochHook:
    """An epoch hook printing one line per epoch: losses, accuracies, seconds."""

    def hook(epoch: int, m: dict[str, float]) -> None:
        log.info(
            f"{prefix}epoch {epoch:3d}  train {m['train_loss']:.4f} {m['train_accuracy']:.2%}  "
            f"val {m['val_loss']:.4f} {m['val_accuracy']:.2%}  {m['epoch_seconds']:.2f}s",
        )

    return hook


def differences(cfg: TrainConfig) -> dict[str, Any]:
    """The settings in which ``cfg`` differs from its preset (seed aside): what names a run."""
    theirs = preset_settings(cfg.preset)
    return {k: v for k, v in cfg.settings().items() if k != "trainer.seed" and theirs.get(k) != v}


SHORT_NAMES = {"data.max_train": "train", "data.max_test": "test", "trainer.epochs": "ep"}
VALUE_ONLY = ("data.name", "model.activation", "optimizer.name", "regularizer.kind")


def mark(key: str, value: Any) -> str:
    if key in VALUE_ONLY:
        return str(value)
    shown = f"{value:g}" if isinstance(value, float) else str(value).replace(" ", "")
    return f"{SHORT_NAMES.get(key, key.rsplit('.', 1)[-1])}={shown}"


def run_name(cfg: TrainConfig, diffs: dict[str, Any]) -> str:
    """``relu-seed0``; ``relu lr=0.05 seed0``; ``relu fashion_mnist train=3000 ep=2 seed0``."""
    seed = f"seed{cfg.trainer.seed}"
    if not diffs:
        return f"{cfg.preset}-{seed}"
    return " ".join([cfg.preset, *(mark(k, v) for k, v in diffs.items()), seed])


def run(
    cfg: TrainConfig,
    hooks: Sequence[fit.EpochHook] = (),
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    on_start: Callable[[str], None] | None = None,
    label: str = "",
) -> fit.Result:
    """Train from a validated config; with tracking on, the result carries its MLflow run id
    (``on_start`` receives it as soon as the run exists, before anything can fail)."""
    data = load_data(cfg)
    fit.check_memory(cfg, data.train.x.shape[1], data.train.t.shape[1])  # before any record
    hooks = [*hooks, progress_line(label)] if cfg.trainer.progress else list(hooks)
    if not cfg.tracking.enabled:
        return fit.train(cfg, data, hooks)
    from pipeline.tracking.runs import Tracker  # imports mlflow: only when tracking is on

    diffs = differences(cfg)
    tags = {
        "preset": cfg.preset,
        "config_hash": cfg.training_hash(),
        "data.digest": data.digest,
        "data.name": cfg.data.name,
        "data.dir": cfg.data.dir,
        "differs_from_preset": " ".join(f"{k}={v}" for k, v in diffs.items()) or "nothing",
        **(tags or {}),
    }
    params = {k: str(v) for k, v in cfg.settings().items()}
    name = cfg.tracking.run_name or run_name(cfg, diffs)
    with Tracker(cfg, name, params, tags, parent_run_id) as tracker:
        tracker.log_dataset(data)
        if on_start:
            on_start(tracker.run_id)
        result = fit.train(cfg, data, [tracker, *hooks])
        tracker.log_result(result, data)
    result.run_id = tracker.run_id
    result.outbox = str(tracker.outbox.folder) if tracker.outbox else None
    return result


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="config")
def main(raw: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    def body() -> float:
        cfg = to_config(raw)
        overrides = " ".join(HydraConfig.get().overrides.task)
        label = job_label()
        result = run(cfg, tags={"hydra.overrides": mask(overrides)}, label=label)
        log.info(
            f"{label}test accuracy {result.test_accuracy:.2%}  test loss {result.test_loss:.4f}  "
            f"best epoch {result.best_epoch}  stopped at {result.stopped_epoch}  "
            f"{result.seconds:.1f}s"
        )
        if result.run_id:
            log.info(f"{label}mlflow run {result.run_id}  {run_url(cfg, result.run_id)}")
        if not result.learned:
            log.warning(NEVER_LEARNED)
        if result.outbox:
            raise StoreError(outbox_message(result.outbox))
        return result.test_accuracy

    return cli.command(body, "the MLflow run was ended as KILLED")


def job_label() -> str:
    """``[#1 relu seed=1] ``: a multirun job's number and values of the swept keys, which
    start each of its lines (jobs run side by side); nothing outside a multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get()
    if hydra.mode != RunMode.MULTIRUN:
        return ""
    given = dict(o.lstrip("+~").split("=", 1) for o in hydra.overrides.task if "=" in o)
    values = [short(k, given[k]) for k in swept_keys() if k in given]
    return f"[#{hydra.job.num} {' '.join(values)}] ".replace(" ]", "]")


def run_url(cfg: TrainConfig, run_id: str) -> str:
    """The run's page in the MLflow UI (``make ui`` serves a local store on port 5000)."""
    _, experiment_id = open_experiment(cfg.tracking.uri, cfg.tracking.experiment)  # cached
    return f"{experiment_url(cfg.tracking.uri, experiment_id)}/runs/{run_id}"


NEVER_LEARNED = (
    "warning: this model never learned (validation accuracy within 5 points of always guessing "
    "the commonest class): lower optimizer.lr or regularizer.lam; the run is tagged learned=false"
)


def outbox_message(folder: str) -> str:
    return (
        f"the tracking store went away during the run; its record (metrics, artifacts, weights) "
        f"is kept in {folder}: upload it with `python -m pipeline.tracking.outbox {folder}` once "
        "the store is back"
    )


if __name__ == "__main__":
    main()
