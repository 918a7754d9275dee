"""Optuna sweep: ``python -m sweeps sweep=lr_activation n_trials=40 workers=2 [training keys]``.

Re-running the same command resumes the study: only trials still missing run. The study has
one MLflow parent run (kept across resumptions and shared by simultaneous launchers) holding
the trials table and Optuna's figures; every trial is a child run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import hydra
import optuna
from omegaconf import DictConfig

from pipeline import cli
from pipeline.config import CONF_DIR, TrainConfig
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.store import mask
from pipeline.train import training_overrides
from sweeps import settings, storage, summary
from sweeps import study as st

SWEEP_KEYS = {"n_trials", "min_complete", "workers", "study", "sweep", "hydra"}


def parent_run(
    s: settings.Settings, studies: list[tuple[settings.Part, optuna.Study]], cfg: TrainConfig
) -> ParentRun:
    """The sweep's one parent run: joined if it exists (another launcher, or an earlier
    invocation), else created; its id is kept on every part of the study."""
    part, first = studies[0]
    with storage.lock(s.storage, first._storage, part.name):
        parent = ParentRun(
            cfg.tracking.uri,
            cfg.tracking.experiment,
            f"study {s.name}",
            {
                "kind": "study",
                "optuna.study": s.name,
                "optuna.storage": mask(s.storage),
                "optuna.sampler": s.sampler,
                "optuna.pruner": s.pruner,
                "optuna.seed": str(s.seed),
                "optuna.objective": s.objective,
                "optuna.sweep": s.sweep,
            },
            join_run_id=first.user_attrs.get("mlflow_parent_run_id"),
        )
        for _, study in studies:
            study.set_user_attr("mlflow_parent_run_id", parent.run_id)
    return parent


def end_parent(s: settings.Settings, studies: list, parent: ParentRun, status: str) -> None:
    part, first = studies[0]
    with storage.lock(s.storage, first._storage, part.name):
        parent.end(status)


def log_summary(parent: ParentRun, studies: list[tuple[settings.Part, optuna.Study]]) -> None:
    """The trials table and Optuna's figures on the parent run, and the sweep's counts as
    metrics whose step is the number of finished trials, so every resumption appends."""
    from mlflow.entities import Metric

    with tempfile.TemporaryDirectory() as tmp:
        table, skipped = summary.write(studies, Path(tmp))
        parent.client.log_artifacts(parent.run_id, tmp)
    counts = table["state"].value_counts() if not table.empty else {}
    metrics = {f"n_{k.lower()}": float(v) for k, v in dict(counts).items()}
    done = table[table["state"] == "COMPLETE"] if not table.empty else table
    if "objective" in done and not done.empty:
        direction = studies[0][1].direction.name.lower()
        best = done["objective"].min() if direction == "minimize" else done["objective"].max()
        metrics["best_value"] = float(best)
    step = int(sum(counts.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL")))
    now = int(time.time() * 1000)
    parent.client.log_batch(
        parent.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()]
    )
    for note in skipped:
        print(f"figure skipped: {note}")


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="sweeps")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    def body() -> None:
        base = training_overrides(HydraConfig.get().overrides.task, SWEEP_KEYS)
        s = settings.settings_from(cfg, base)
        train_cfg = settings.check(s)  # every setting and every value of the space, first
        epochs = train_cfg.trainer.epochs
        studies = st.resume(s, epochs)
        parent = parent_run(s, studies, train_cfg) if train_cfg.tracking.enabled else None
        try:
            st.run_workers(s, parent and parent.run_id, epochs)
            if parent:
                log_summary(parent, studies)
        except BaseException as err:
            if parent:
                end_parent(
                    s, studies, parent, "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
                )
            raise
        if parent:
            end_parent(s, studies, parent, "FINISHED")
        for part, study in studies:
            print(f"{part.name}: best {s.objective} {st.best_text(study)}", end="")
            print(
                f" {study.best_params}" if st.best_text(study) != "-" else " (no trial completed)"
            )

    cli.command(body, "run the same command again to resume the study")


if __name__ == "__main__":
    main()
