"""Parent runs: one per multirun, study or report, so the UI shows groups as trees.

A parent exports its id in ``$PIPELINE_PARENT_RUN_ID`` so children in this process and its
subprocesses attach to it. Several processes may share one (launchers of one study): each
joins as an owner, and the last to leave ends it.
"""

from __future__ import annotations

import atexit
import os
import time
from typing import Any

from hydra.experimental.callback import Callback

from pipeline.tracking import lifecycle, store
from pipeline.tracking.provenance import provenance
from pipeline.tracking.runs import PARENT_RUN_ENV, beat, owner_tags


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
        self.run_id = join_run_id and self._join(join_run_id)
        if not self.run_id:
            tags = {**provenance(), **tags, **owner_tags()}
            run = self.client.create_run(experiment_id, run_name=name, tags=tags)
            self.run_id = run.info.run_id
        if export:  # children started from here on attach to it
            os.environ[PARENT_RUN_ENV] = self.run_id
        lifecycle.HEARTBEAT.add(self.run_id, beat(self.client, self.run_id))
        self._ended = False
        atexit.register(self.end, "KILLED")

    def _owners(self, run_id: str) -> list[str]:
        """The owners of ``run_id`` still alive (or on other machines), without this process."""
        tags = self.client.get_run(run_id).data.tags
        me = lifecycle.me()
        owners = lifecycle.parse_owners(tags.get(lifecycle.OWNERS_TAG))
        return [o for o in owners if o != me and lifecycle.alive(o) is not False]

    def _join(self, run_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            others = self._owners(run_id)
        except MlflowException:  # the run was deleted: start a new one
            return None
        owners = ",".join([*others, lifecycle.me()])
        self.client.set_tag(run_id, lifecycle.OWNERS_TAG, owners)
        self.client.update_run(run_id, status="RUNNING")
        return run_id

    def end(self, status: str = "FINISHED") -> None:
        if self._ended:
            return
        self._ended = True
        lifecycle.HEARTBEAT.remove(self.run_id)
        others = self._owners(self.run_id)
        if not others:
            self.client.set_terminated(self.run_id, status)
        # leave the owners either way: a launcher that joins while this process is still
        # exiting must not count it as an owner (it would wait on it, and never end the run)
        self.client.set_tag(self.run_id, lifecycle.OWNERS_TAG, ",".join(others))
        if os.environ.get(PARENT_RUN_ENV) == self.run_id:
            del os.environ[PARENT_RUN_ENV]


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
