"""Parent runs: one per multirun, study or report, so the UI shows groups as trees.

A parent exports its id in ``$PIPELINE_PARENT_RUN_ID`` so children in this process and its
subprocesses attach to it. Several processes may share one (launchers of one study, on any
number of machines): each joins as an owner with its own heartbeat, an owner whose process
ended (or, on another machine, whose heartbeat is older than ``tracking.stale_after``) is
dropped, and the last owner to leave ends it with its own status.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
from typing import Any

from hydra.experimental.callback import Callback

from pipeline.tracking import lifecycle, store
from pipeline.tracking.provenance import provenance
from pipeline.tracking.runs import PARENT_RUN_ENV, is_outage

log = logging.getLogger(__name__)


class ParentRun:
    """A parent run, ended even if the process exits early. Callers that share one
    serialise creating/joining and ``end`` with a lock."""

    def __init__(
        self,
        uri: str | None,
        experiment: str,
        name: str,
        tags: dict[str, str],
        join_run_id: str | None = None,
        export: bool = True,
    ) -> None:
        self.client, experiment_id = store.open_experiment(uri, experiment)
        self.me = lifecycle.me()
        self.run_id = join_run_id and self._join(join_run_id)
        if not self.run_id:
            tags = {**provenance(), **tags, **self._owner_tags([])}
            run = self.client.create_run(experiment_id, run_name=name, tags=tags)
            self.run_id = run.info.run_id
        if export:  # children started from here on attach to it
            os.environ[PARENT_RUN_ENV] = self.run_id
        lifecycle.HEARTBEAT.add(self.run_id, self._beat)
        self._ended = False
        atexit.register(self.end, "KILLED")

    def _owner_tags(self, others: list[str]) -> dict[str, str]:
        """The owners with this process among them, and its heartbeat, as of now."""
        return {
            lifecycle.OWNERS_TAG: ",".join([*others, self.me]),
            lifecycle.beat_tag(self.me): f"{time.time():.0f}",
        }

    def _beat(self) -> None:
        self.client.set_tag(self.run_id, lifecycle.beat_tag(self.me), f"{time.time():.0f}")

    def _others(self, run_id: str) -> list[str]:
        """The owners of ``run_id`` that have not ended, without this process."""
        tags = self.client.get_run(run_id).data.tags
        return [o for o in lifecycle.living(tags) if o != self.me]

    def _join(self, run_id: str) -> str | None:
        """Become an owner, with a heartbeat at once (another machine judges the run by its
        owners' heartbeats), dropping the owners that ended; then the run is RUNNING."""
        from mlflow.entities import RunTag
        from mlflow.exceptions import MlflowException

        try:
            others = self._others(run_id)
        except MlflowException:  # the run was deleted: start a new one
            return None
        tags = [RunTag(k, v) for k, v in self._owner_tags(others).items()]
        self.client.log_batch(run_id, tags=tags)
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def end(self, status: str = "FINISHED", complete: bool = False) -> None:
        """Leave the run, and end it with ``status`` if no other owner is left, or if the work
        is ``complete`` (a study with no trial to run: an owner that vanished has nothing
        left to do in it, and one still closing would end it FINISHED too).

        An unreachable store is not called again (often an error path: the error that ended
        the work is the one to report): the run stays RUNNING with this process as an owner,
        and the next command that reaches the store ends it, as it would after a kill."""
        if self._ended:
            return
        self._ended = True
        lifecycle.HEARTBEAT.remove(self.run_id)
        if os.environ.get(PARENT_RUN_ENV) == self.run_id:
            del os.environ[PARENT_RUN_ENV]
        try:
            others = self._others(self.run_id)
            if complete or not others:
                self.client.set_terminated(self.run_id, status)
            # leave the owners either way: a launcher that joins while this process is still
            # exiting must not count it as an owner (it would wait on it, and never end the run)
            self.client.set_tag(self.run_id, lifecycle.OWNERS_TAG, ",".join(others))
            self.client.delete_tag(self.run_id, lifecycle.beat_tag(self.me))
        except Exception as err:
            if not is_outage(err):
                raise
            log.info(
                f"parent run {self.run_id} not ended ({status}): the tracking store is "
                "unreachable; the next command that reaches it ends the run"
            )


SWEPT_ENV = "PIPELINE_SWEPT_KEYS"  # a multirun's swept keys, for its jobs' labels


def swept(overrides: list[str]) -> dict[str, list[str]]:
    """The keys a multirun sweeps (``experiment=sigmoid,relu``, ``trainer.seed=range(3)``)
    and their values, in command-line order."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {
        o.key_or_group: list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()
    }


def short(key: str, value: str) -> str:
    """``trainer.seed=1`` -> ``seed=1``, ``experiment=relu`` -> ``relu``: a job's label."""
    return value if key == "experiment" else f"{key.rsplit('.', 1)[-1]}={value}"


class MultirunParent(Callback):
    """Hydra callback (``conf/config.yaml``): one MLflow parent run per ``-m`` multirun, named
    after what it sweeps; its jobs label their lines with their values of the swept keys, and
    at the end the mean test accuracy of each configuration over its jobs (seeds) is printed."""

    parent: ParentRun | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        keys = swept(list(config.hydra.overrides.task))
        os.environ[SWEPT_ENV] = ",".join(keys)
        if not config.get("tracking", {}).get("enabled", False):
            return
        overrides = " ".join(config.hydra.overrides.task)
        what = " ".join(f"{k.rsplit('.', 1)[-1]}={','.join(v)}" for k, v in keys.items())
        self.parent = ParentRun(
            config.tracking.uri,
            config.tracking.experiment,
            store.mask(f"multirun {what or overrides}")[:250],
            {"kind": "multirun", "hydra.overrides": store.mask(overrides)},
        )

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent is None:
            return
        self.parent.end("FINISHED")
        try:
            for line in summary(self.parent, [k for k in swept_keys() if k != "trainer.seed"]):
                print(line, flush=True)
        except Exception as err:  # a summary is a convenience: never fail the multirun on it
            if not is_outage(err):
                raise


def swept_keys() -> list[str]:
    return [k for k in os.environ.get(SWEPT_ENV, "").split(",") if k]


def summary(parent: ParentRun, keys: list[str]) -> list[str]:
    """Mean ± sd of the test accuracy over the jobs of each configuration (the swept values
    but the seed), read back from the multirun's child runs."""
    import statistics

    children = parent.client.search_runs(
        [parent.client.get_run(parent.run_id).info.experiment_id],
        f"tags.mlflow.parentRunId = '{parent.run_id}' and attributes.status = 'FINISHED'",
        max_results=10_000,
    )
    groups: dict[str, list[float]] = {}
    for run in children:
        if "test_accuracy" not in run.data.metrics:
            continue
        given = dict(o.split("=", 1) for o in run.data.tags.get("hydra.overrides", "").split())
        label = " ".join(short(k, given[k]) for k in keys if k in given) or "all jobs"
        groups.setdefault(label, []).append(run.data.metrics["test_accuracy"])
    if not groups:
        return []
    width = max(map(len, groups))
    lines = ["test accuracy over the jobs of each configuration (mean ± sd):"]
    for label, values in sorted(groups.items(), key=lambda g: -statistics.mean(g[1])):
        sd = f" ± {statistics.stdev(values):.2%}" if len(values) > 1 else ""
        n = f"{len(values)} job{'s' if len(values) > 1 else ''}"
        lines.append(f"  {label:<{width}}  {statistics.mean(values):.2%}{sd}  ({n})")
    return lines
