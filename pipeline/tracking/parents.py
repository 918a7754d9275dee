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


class MultirunParent(Callback):
    """Hydra callback (``conf/config.yaml``): one MLflow parent run per ``-m`` multirun."""

    parent: ParentRun | None = None

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if not config.get("tracking", {}).get("enabled", False):
            return
        overrides = " ".join(config.hydra.overrides.task)
        self.parent = ParentRun(
            config.tracking.uri,
            config.tracking.experiment,
            f"multirun {time.strftime('%Y-%m-%d %H:%M:%S')}",
            {"kind": "multirun", "hydra.overrides": store.mask(overrides)},
        )

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        if self.parent is not None:
            self.parent.end("FINISHED")
