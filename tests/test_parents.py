"""A parent run shared by launchers on several machines, on a real SQLite store: each owner
beats on its own, an owner gone past ``tracking.stale_after`` is dropped, a joiner beats at
once, and the last owner ends the run with its own status. The other machines are fabricated
owners (``elsewhere/...``), judged as a launcher on another host judges them."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from pipeline.tracking import lifecycle
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.store import open_experiment

EXPERIMENT = "parents"
LIVE, DEAD = "elsewhere/boot/1:11:22", "gone-host/boot/1:33:44"


@pytest.fixture(autouse=True)
def _default_timeout(monkeypatch) -> None:
    monkeypatch.delenv(lifecycle.STALE_AFTER_ENV, raising=False)


def shared_run(uri: str, beats: dict[str, float]) -> str:
    """A RUNNING parent owned by other machines, each with its own last heartbeat."""
    client, experiment_id = open_experiment(uri, EXPERIMENT)
    tags = {lifecycle.OWNERS_TAG: ",".join(beats)}
    tags |= {lifecycle.beat_tag(o): f"{b:.0f}" for o, b in beats.items()}
    return client.create_run(experiment_id, tags=tags).info.run_id


def join(uri: str, run_id: str) -> ParentRun:
    return ParentRun(uri, EXPERIMENT, "study", {}, join_run_id=run_id, export=False)


def test_a_joiner_drops_the_owners_gone_and_beats_at_once(store: str) -> None:
    now = time.time()
    run_id = shared_run(store, {LIVE: now - 30, DEAD: now - 2 * lifecycle.stale_after()})
    parent = join(store, run_id)
    tags = MlflowClient(store).get_run(run_id).data.tags
    assert lifecycle.parse_owners(tags[lifecycle.OWNERS_TAG]) == [LIVE, lifecycle.me()]
    assert abs(float(tags[lifecycle.beat_tag(lifecycle.me())]) - now) < 60
    assert tags[lifecycle.beat_tag(LIVE)] == f"{now - 30:.0f}"  # each owner's beat is its own
    MlflowClient(store).set_tag(run_id, lifecycle.beat_tag(lifecycle.me()), "0")
    lifecycle.HEARTBEAT._beats[run_id]()  # the heartbeat thread's call
    tags = MlflowClient(store).get_run(run_id).data.tags
    assert abs(float(tags[lifecycle.beat_tag(lifecycle.me())]) - time.time()) < 60
    assert tags[lifecycle.beat_tag(LIVE)] == f"{now - 30:.0f}"
    parent.end("FINISHED")  # another owner beats: it stays RUNNING, without this process
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == "RUNNING" and run.data.tags[lifecycle.OWNERS_TAG] == LIVE
    assert lifecycle.beat_tag(lifecycle.me()) not in run.data.tags


def test_a_remote_owner_gone_silent_is_ended_by_the_next_command(store: str) -> None:
    now = time.time()
    client, experiment_id = open_experiment(store, EXPERIMENT)
    beating = shared_run(store, {LIVE: now - 30, DEAD: now - 2 * lifecycle.stale_after()})
    silent = shared_run(store, {DEAD: now - 2 * lifecycle.stale_after()})
    assert lifecycle.end_stale_runs(client, experiment_id) == 1
    assert client.get_run(beating).info.status == "RUNNING"  # one owner still beats
    ended = client.get_run(silent)
    assert ended.info.status == "KILLED"
    assert "pid 33 on gone-host/boot/1" in ended.data.tags[lifecycle.ENDED_TAG]


@pytest.mark.parametrize("status", ["FINISHED", "FAILED", "KILLED"])
def test_the_last_owner_ends_it_with_its_own_status(store: str, status: str) -> None:
    # the audit: a dead node's launcher stayed an owner for ever, so the parent never ended
    run_id = shared_run(store, {DEAD: time.time() - 2 * lifecycle.stale_after()})
    join(store, run_id).end(status)
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == status and run.data.tags[lifecycle.OWNERS_TAG] == ""


def test_a_complete_study_ends_finished_whoever_is_still_listed(store: str) -> None:
    run_id = shared_run(store, {LIVE: time.time()})  # a node that died a moment ago
    join(store, run_id).end("FINISHED", complete=True)
    run = MlflowClient(store).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags[lifecycle.OWNERS_TAG] == LIVE


def test_a_joined_parent_is_not_ended_from_another_machine(store: str, monkeypatch) -> None:
    # the audit: a launcher joined a finished parent without a heartbeat of its own, and a
    # command on another host ended the live parent KILLED seconds later
    client, experiment_id = open_experiment(store, EXPERIMENT)
    old = {lifecycle.OWNERS_TAG: "", lifecycle.HEARTBEAT_TAG: "1000"}  # an earlier owner's
    run_id = client.create_run(experiment_id, tags=old).info.run_id
    client.set_terminated(run_id, "FINISHED")
    parent = join(store, run_id)
    monkeypatch.setattr(lifecycle, "this_host", lambda: "another-host/boot/1")  # seen from there
    assert lifecycle.alive(parent.me) is None  # judged by its heartbeat, not by its pid
    assert lifecycle.end_stale_runs(client, experiment_id) == 0
    assert client.get_run(run_id).info.status == "RUNNING"
    monkeypatch.undo()
    parent.end("FINISHED")
    assert client.get_run(run_id).info.status == "FINISHED"
