"""A study in MLflow: one parent run (shared by launchers and resumptions) whose children are
the trials, holding the trials table, Optuna's figures and the study's counts."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from pipeline import train
from pipeline.config import TrainConfig
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.runs import end_status, is_outage
from pipeline.tracking.store import StoreError, mask
from sweeps import budget, settings, storage, summary
from sweeps.best import best_of

log = logging.getLogger(__name__)
SUMMARIZED = "pipeline.summarized_trials"  # how many finished trials the summary shows, and
SUMMARY_FORMAT = "2"  # what it holds (bumped when that changes, so old summaries are redone)


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
            f"{s.sweep} study",  # short for the runs table; the full name is a tag
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
    """Leave the parent (under the study's lock, like joining it); a study with nothing left
    to run ends it FINISHED, whoever else is still listed as its owner."""
    part, first = studies[0]
    with storage.lock(s.storage, first._storage, part.name):
        done = status == "FINISHED" and budget.complete(s, studies)
        parent.end(status, complete=done)


@contextmanager
def study_run(
    s: settings.Settings, studies: list[tuple[settings.Part, optuna.Study]], cfg: TrainConfig
) -> Iterator[ParentRun | None]:
    """The study's parent run around its trials (None without tracking): ended KILLED or
    FAILED if they are, else given the summary and ended FINISHED (by the last launcher)."""
    if not cfg.tracking.enabled:
        yield None
        return
    parent = parent_run(s, studies, cfg)
    try:
        yield parent
        part, first = studies[0]
        # under the study's lock: two launchers ending together would insert the same new
        # tags at once (an IntegrityError), and the second finds the summary already written
        with storage.lock(s.storage, first._storage, part.name):
            try:
                log_summary(parent, studies)
            except Exception as err:
                if not is_outage(err):
                    raise
                raise StoreError(
                    f"the study's summary was not recorded: the tracking store is unreachable "
                    f"({mask(str(err).splitlines()[0])[:200]}); run the same command again once "
                    "it is back"
                ) from None
    except BaseException as err:
        end_parent(s, studies, parent, end_status(err))
        raise
    end_parent(s, studies, parent, "FINISHED")


def log_summary(parent: ParentRun, studies: list[tuple[settings.Part, optuna.Study]]) -> None:
    """The trials table and Optuna's figures on the parent run, and the sweep's counts as
    metrics whose step is the number of finished trials, so every resumption appends. Nothing
    is redrawn when no trial finished since the last summary (a warm report)."""
    from mlflow.entities import Metric, RunTag

    finished = sum(t.state.is_finished() for _, st in studies for t in st.trials)
    finished = f"{finished}/{SUMMARY_FORMAT}"
    if parent.client.get_run(parent.run_id).data.tags.get(SUMMARIZED) == finished:
        return
    with tempfile.TemporaryDirectory() as tmp:
        table, skipped = summary.write(studies, Path(tmp))
        parent.client.log_artifacts(parent.run_id, tmp)
    counts = table["state"].value_counts() if not table.empty else {}
    metrics = {f"n_{k.lower()}": float(v) for k, v in dict(counts).items()}
    best = best_of(studies)
    metric = (studies[0][1].metric_names or ["value"])[0]
    tags = best_tags(parent, *best, metric) if best is not None else {}
    if best is not None:
        metrics["best_value"] = float(best[1].value)
    reused = reused_line(parent, studies)
    if reused:
        note = tags.get("mlflow.note.content")
        tags["mlflow.note.content"] = f"{note}\n\n{reused}" if note else reused
    if tags:
        parent.client.log_batch(parent.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    step = int(sum(counts.get(k, 0) for k in ("COMPLETE", "PRUNED", "FAIL")))
    now = int(time.time() * 1000)
    parent.client.log_batch(
        parent.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()]
    )
    parent.client.set_tag(parent.run_id, SUMMARIZED, finished)
    for note in skipped:
        log.info(f"figure skipped: {note}")


MAX_LINKS = 40  # a tag holds a few thousand characters; trials.csv lists every run


def reused_line(parent: ParentRun, studies: list[tuple[settings.Part, optuna.Study]]) -> str:
    """The trials whose run another study (or sweep) trained, as links in the parent's
    description: the UI's tree shows a run under its one parent, so these are listed here."""
    reused = [
        (part, t)
        for part, study in studies
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("reused") and t.user_attrs.get("mlflow_run_id")
    ]
    if not reused:
        return ""
    experiment_id = parent.client.get_run(parent.run_id).info.experiment_id
    links = [
        f"[{part.label + ' ' if part.label else ''}#{t.number}]"
        f"(#/experiments/{experiment_id}/runs/{t.user_attrs['mlflow_run_id']})"
        for part, t in reused[:MAX_LINKS]
    ]
    more = f" and {len(reused) - MAX_LINKS} more (trials.csv)" if len(reused) > MAX_LINKS else ""
    return (
        f"{len(reused)} trials reuse the run of the same computation made under another "
        f"parent: {', '.join(links)}{more}"
    )


def best_tags(
    parent: ParentRun, part: settings.Part, trial: optuna.trial.FrozenTrial, metric: str
) -> dict[str, str]:
    """The study's best trial on its parent run: value, trial, parameters, and its run as a
    link in the run's description (the MLflow UI renders it as Markdown)."""
    run_id = trial.user_attrs.get("mlflow_run_id", "")
    values = {**part.fixed, **trial.params}
    shown = " ".join(train.mark(k, v) for k, v in values.items())
    link = f"#{trial.number} {shown}"
    if run_id:
        experiment_id = parent.client.get_run(parent.run_id).info.experiment_id
        link = f"[{link}](#/experiments/{experiment_id}/runs/{run_id})"
    return {
        "best.value": f"{trial.value:.6g}",
        "best.trial": f"{part.name} #{trial.number}",
        "best.run_id": run_id,
        **{f"best.{k}": str(v) for k, v in values.items()},
        "mlflow.note.content": f"Best trial: {link}, {metric} {trial.value:.4f}",
    }
