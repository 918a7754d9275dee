"""Who owns a RUNNING record, whether that process lives, and ending the runs nobody owns."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.tracking import lifecycle, store
from tests.processes import wait_for


def dead_owner() -> str:
    """An owner on this machine whose process has ended."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return f"{lifecycle.this_host()}:{proc.pid}:1"


def test_an_owner_is_host_boot_pid_and_start_time() -> None:
    host, pid, start = lifecycle.me().rsplit(":", 2)
    assert host == lifecycle.this_host() and host.startswith(socket.gethostname() + "/")
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()[:8]
    namespace = os.stat("/proc/self/ns/pid").st_ino  # a container's pids are its own
    assert host.endswith(f"/{boot}/{namespace}")
    assert pid == str(os.getpid())
    with open(f"/proc/{os.getpid()}/stat") as f:
        assert start == f.read().rsplit(")", 1)[1].split()[19]


def test_whether_an_owner_lives() -> None:
    assert lifecycle.alive(lifecycle.me()) is True
    assert lifecycle.alive(dead_owner()) is False
    host, pid, start = lifecycle.me().rsplit(":", 2)
    assert lifecycle.alive(f"{host}:{pid}:{int(start) + 1}") is False  # a recycled pid
    assert lifecycle.alive(f"{host}:x{pid}:{start}") is False
    assert lifecycle.alive(f"elsewhere/boot:{pid}:{start}") is None
    assert lifecycle._start_time(2**22 + 7) is None


def test_owners_are_a_comma_separated_list() -> None:
    assert lifecycle.parse_owners("a:1:2,b:3:4") == ["a:1:2", "b:3:4"]
    assert lifecycle.parse_owners(",a:1:2,") == ["a:1:2"]
    assert lifecycle.parse_owners(None) == [] == lifecycle.parse_owners("")


def test_the_note_names_the_vanished_processes_and_who_noticed() -> None:
    note = lifecycle.ended_note(["h/b:12:3", "g/c:45:6"])
    assert note.startswith(
        "its process (pid 12 on h/b, pid 45 on g/c) ended without closing it; ended by pid "
        f"{os.getpid()} at "
    )
    assert len(note.rsplit(" at ", 1)[1]) == len("2026-01-01 00:00:00")


def test_only_runs_that_no_live_process_owns_are_ended(store: str) -> None:
    client, experiment = store_client(store)
    me, dead = lifecycle.me(), dead_owner()

    def running(owners: str | None, beat: str | None = None) -> str:
        tags = {lifecycle.OWNERS_TAG: owners} if owners else {}
        if beat:
            tags[lifecycle.HEARTBEAT_TAG] = beat
        return client.create_run(experiment, tags=tags).info.run_id

    gone = running(dead, "1700000000")
    silent = running("elsewhere/boot:1:2", "1000")  # another machine's, silent for long
    beating = running("elsewhere/boot:1:2", f"{time.time():.0f}")
    gone_without_beat = running(dead)
    alive = running(f"{dead},{me}", "1")
    foreign = running(None)
    finished = running(dead)
    client.set_terminated(finished, "FINISHED")
    assert lifecycle.end_stale_runs(client, experiment) == 3
    assert client.get_run(silent).info.status == "KILLED"
    assert client.get_run(beating).info.status == "RUNNING"
    status = {r: client.get_run(r).info.status for r in (gone, gone_without_beat, alive, foreign)}
    assert status == {
        gone: "KILLED",
        gone_without_beat: "KILLED",
        alive: "RUNNING",
        foreign: "RUNNING",
    }
    assert client.get_run(finished).info.status == "FINISHED"
    ended = client.get_run(gone)
    assert ended.info.end_time == 1700000000 * 1000  # its last sign of life
    assert ended.data.tags[lifecycle.ENDED_TAG].startswith(
        f"its process (pid {dead.rsplit(':', 2)[1]} on {lifecycle.this_host()}) ended"
    )
    assert lifecycle.ENDED_TAG not in client.get_run(alive).data.tags
    assert lifecycle.end_stale_runs(client, experiment) == 0


def store_client(uri: str) -> tuple[MlflowClient, str]:
    client = store.client(uri)
    return client, client.create_experiment("lifecycle")


def test_the_heartbeat_calls_every_beat_and_survives_a_failing_one(monkeypatch) -> None:
    monkeypatch.setattr(lifecycle, "HEARTBEAT_SECONDS", 0.01)
    heartbeat = lifecycle.Heartbeat()
    beats: list[str] = []

    def broken() -> None:
        beats.append("broken")
        raise RuntimeError("store down")

    heartbeat.add("b", broken)  # first: the beats after it still run
    heartbeat.add("a", lambda: beats.append("a"))
    wait_for(lambda: beats.count("a") >= 2 and beats.count("broken") >= 2, "two beats of each")
    assert heartbeat._thread.daemon and heartbeat._thread.name == "heartbeat"
    first = heartbeat._thread
    heartbeat.add("c", lambda: None)
    assert heartbeat._thread is first  # one thread, however many beats
    heartbeat.remove("a")
    heartbeat.remove("never added")
    assert set(heartbeat._beats) == {"b", "c"}


@pytest.mark.parametrize(
    ("owners", "heartbeat", "stale"),
    [
        ([], None, False),
        (["elsewhere/x:1:2"], None, False),
        (["elsewhere/x:1:2"], 10_000.0 - lifecycle.DEFAULT_STALE_AFTER, False),
        (["elsewhere/x:1:2"], 9_999.0 - lifecycle.DEFAULT_STALE_AFTER, True),
    ],
)
def test_a_remote_owner_is_stale_once_its_heartbeat_is_old(
    owners, heartbeat, stale, monkeypatch
) -> None:
    monkeypatch.delenv(lifecycle.STALE_AFTER_ENV, raising=False)
    assert lifecycle.is_stale(owners, heartbeat, now=10_000.0) is stale


def test_stale_after_is_one_timeout_for_runs_trials_and_optunas_grace_period(
    tmp_path: Path, monkeypatch
) -> None:
    """``tracking.stale_after``, applied by the commands' Hydra callback, is exported to the
    workers and jobs a command starts, and read by every rule that judges another machine."""
    from omegaconf import OmegaConf

    from pipeline.cli import StaleAfter
    from sweeps import storage

    monkeypatch.delenv(lifecycle.STALE_AFTER_ENV, raising=False)
    assert lifecycle.stale_after() == 600.0
    monkeypatch.setenv(lifecycle.STALE_AFTER_ENV, "600")  # restored after the test
    StaleAfter().on_job_start(OmegaConf.create({"tracking": {"stale_after": 3600}}))
    assert os.environ[lifecycle.STALE_AFTER_ENV] == "3600.0"
    now = 100_000.0
    assert not lifecycle.is_stale(["elsewhere/x:1:2"], now - 1000, now)  # stale at 600 s
    assert lifecycle.is_stale(["elsewhere/x:1:2"], now - 3601, now)
    rdb = storage.open_storage(f"sqlite:///{tmp_path}/optuna.db")
    assert getattr(rdb, "_backend", rdb).grace_period == 3600  # Optuna's failed-trial rule
    assert lifecycle.heartbeat_seconds() == 60.0
    monkeypatch.setenv(lifecycle.STALE_AFTER_ENV, "20")  # a short timeout beats more often
    assert lifecycle.heartbeat_seconds() == 2.0
    StaleAfter().on_job_start(OmegaConf.create({"tracking": {"stale_after": "soon"}}))
    assert lifecycle.stale_after() == 20.0  # a bad value is the config's one-line error


def test_an_owner_is_split_from_the_right(monkeypatch) -> None:
    """``host:pid:start``: whatever the host name holds, the last two fields are the pid and
    the start time."""
    _, pid, start = lifecycle.me().rsplit(":", 2)
    monkeypatch.setattr(lifecycle, "this_host", lambda: "odd:name/boot")
    assert lifecycle.alive(f"odd:name/boot:{pid}:{start}") is True
    assert lifecycle.ended_note(["a:b/c:12:3"]).startswith("its process (pid 12 on a:b/c) ended")


def test_the_start_time_survives_odd_names_and_zombies(tmp_path: Path) -> None:
    """/proc/<pid>/stat is ``pid (name) state ... starttime``, and a name may hold ``) ``:
    the fields are read after the last parenthesis. A zombie has no start time (it is gone)."""
    from tests.processes import state, wait_for

    odd = tmp_path / "a) b (c"
    os.symlink(shutil.which("sleep"), odd)
    proc = subprocess.Popen([str(odd), "60"])
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        assert "a) b (c" in stat
        assert lifecycle._start_time(proc.pid) == stat[stat.rindex(")") + 2 :].split()[19]
    finally:
        proc.kill()
        wait_for(lambda: state(proc.pid) == "Z", "the killed process to be a zombie")
    assert lifecycle._start_time(proc.pid) is None
    proc.wait()
