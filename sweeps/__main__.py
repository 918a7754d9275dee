"""Optuna sweep: ``python -m sweeps sweep=lr_activation n_trials=40 workers=2 [training keys]``.

Re-running the same command resumes the study: only trials still missing run. The study has
one MLflow parent run (kept across resumptions and shared by simultaneous launchers) holding
the trials table and Optuna's figures; every trial is a child run.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from pipeline import cli
from pipeline.config import CONF_DIR
from pipeline.tracking import store
from pipeline.train import training_overrides
from sweeps import budget, launchers, record, settings
from sweeps import study as st
from sweeps.best import best_trial

log = logging.getLogger(__name__)

SWEEP_KEYS = {"n_trials", "min_complete", "workers", "study", "sweep", "launcher", "hydra"}


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="sweeps")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    def body() -> None:
        base = training_overrides(HydraConfig.get().overrides.task, SWEEP_KEYS)
        s = settings.settings_from(cfg, base)
        launchers.configure(cfg.launcher)
        train_cfg = settings.check(s)  # every setting and every value of the space, first
        if train_cfg.tracking.enabled:  # and the store, before the study is touched
            store.open_experiment(train_cfg.tracking.uri, train_cfg.tracking.experiment)
        epochs = train_cfg.trainer.epochs
        studies = st.resume(s, epochs)
        with record.study_run(s, studies, train_cfg) as parent:
            st.run_workers([st.Task(s, parent and parent.run_id, epochs)], s.workers)
        for part, study in studies:
            note = budget.running_note(study.get_trials(deepcopy=False), s)
            if note:
                log.warning(f"{part.name}: the study is not complete: {note}")
            best = best_trial(study)
            found = (
                f"{best.value:.4f} {best.params}" if best else "- (no trial completed and learned)"
            )
            log.info(f"{part.name}: best {s.objective} {found}")

    cli.command(body, "run the same command again to resume the study")


if __name__ == "__main__":
    main()
