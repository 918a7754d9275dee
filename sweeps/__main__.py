"""Optuna sweep: ``python -m sweeps sweep=lr_activation n_trials=40 workers=2 [training keys]``.

Re-running the same command resumes the study: only trials still missing to reach
``n_trials`` run. The study has one MLflow parent run (kept across resumptions) holding the
trials table and Optuna's figures; every trial is a child run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import hydra
import optuna
from omegaconf import DictConfig

from pipeline.config import ConfigError, TrainConfig, to_config
from pipeline.tracking import ParentRun
from pipeline.train import compose, training_overrides
from sweeps import study as st
from sweeps import summary
from sweeps.space import SweepError

SWEEP_KEYS = {"n_trials", "workers", "study", "sweep", "hydra"}


def parent_run(s: st.Settings, study: optuna.Study, cfg: TrainConfig) -> ParentRun:
    parent = ParentRun(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        f"study {s.name}",
        {
            "kind": "study",
            "optuna.study": s.name,
            "optuna.storage": s.storage,
            "optuna.sampler": s.sampler,
            "optuna.pruner": s.pruner,
            "optuna.seed": str(s.seed),
            "optuna.objective": s.objective,
            "optuna.sweep": s.sweep,
        },
        resume_run_id=study.user_attrs.get("mlflow_parent_run_id"),
    )
    study.set_user_attr("mlflow_parent_run_id", parent.run_id)
    return parent


def log_summary(parent: ParentRun, study: optuna.Study, s: st.Settings) -> None:
    from mlflow.entities import Metric

    with tempfile.TemporaryDirectory() as tmp:
        table, skipped = summary.write(study, Path(tmp))
        parent.client.log_artifacts(parent.run_id, tmp)
    states = table["state"].value_counts() if not table.empty else {}
    metrics = {f"n_{k.lower()}": float(v) for k, v in dict(states).items()}
    if "COMPLETE" in states:
        metrics["best_value"] = study.best_value
    parent.client.log_batch(parent.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
    for note in skipped:
        print(f"figure skipped: {note}")


@hydra.main(version_base=None, config_path="../conf", config_name="sweeps")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    base = training_overrides(HydraConfig.get().overrides.task, SWEEP_KEYS)
    try:
        s = st.settings_from(cfg, base)
        st.check(s)
        train_cfg = to_config(compose(base))
    except (SweepError, ConfigError) as err:
        sys.exit(f"error: {err}")
    epochs = train_cfg.trainer.epochs
    study, missing, existing = st.resume(s, epochs)
    parent = parent_run(s, study, train_cfg) if train_cfg.tracking.enabled else None
    try:
        if missing > 0:
            st.run_workers(s, missing, existing, parent and parent.run_id, epochs)
        if parent:
            log_summary(parent, study, s)
    except KeyboardInterrupt:
        if parent:
            parent.end("KILLED")
        sys.exit("interrupted: run the same command again to resume the study")
    except BaseException:
        if parent:
            parent.end("FAILED")
        raise
    if parent:
        parent.end("FINISHED")
    try:
        print(f"best {s.objective} {study.best_value:.4f}: {study.best_params}")
    except ValueError:
        print("no trial completed")


if __name__ == "__main__":
    main()
