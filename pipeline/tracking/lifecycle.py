"""Whose record is RUNNING, whether that process still lives, and the heartbeat that says so.

A run (MLflow) or a trial (Optuna) is RUNNING only while a process owns it. Its owners are
written on it as ``host:pid:start`` (``host`` includes the boot id and the PID namespace,
``start`` is the process's start time, so a recycled pid is never mistaken for the owner), and
a heartbeat time is refreshed every ``heartbeat_seconds()`` (60 s, or a tenth of a shorter
timeout, so a live record always beats several times within it). A record is stale, and the next
command that opens the store ends it, when none of its owners lives: on this machine that is
known at once from ``/proc``; for an owner on another machine, when its heartbeat is older
than ``stale_after()`` seconds (``tracking.stale_after``, exported to every worker and job as
``$PIPELINE_STALE_AFTER``). Records without owners (made by other tools) are left alone.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import cache

HEARTBEAT_SECONDS = 60.0
STALE_AFTER_ENV = "PIPELINE_STALE_AFTER"
DEFAULT_STALE_AFTER = 600.0  # tracking.stale_after's default
OWNERS_TAG = "pipeline.owners"
HEARTBEAT_TAG = "pipeline.heartbeat"  # a run's; each owner of a shared parent has its own
ENDED_TAG = "pipeline.ended_by"  # why a stale record was ended, and by which command


@cache
def this_host() -> str:
    """Host name, boot id and PID namespace: after a reboot no old pid can pass for a live one,
    and a container sharing the host's name (its own PID namespace, where pids start at 1)
    counts as another machine, judged by its heartbeat, never by a pid it does not share."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
    except OSError:
        boot = "noboot"
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "nons"
    return f"{socket.gethostname()}/{boot}/{namespace}"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name may contain spaces
    except (OSError, IndexError):
        return None
    return None if fields[0] in "ZX" else fields[19]


def stale_after() -> float:
    """Seconds without a heartbeat after which another machine's record is stale."""
    return float(os.environ.get(STALE_AFTER_ENV) or DEFAULT_STALE_AFTER)


def heartbeat_seconds() -> float:
    """How often a live record beats: ``HEARTBEAT_SECONDS``, or a tenth of a shorter timeout."""
    return min(HEARTBEAT_SECONDS, stale_after() / 10)


def set_stale_after(seconds: float) -> None:
    """This process's timeout, and that of every worker and job it starts (they inherit it)."""
    os.environ[STALE_AFTER_ENV] = str(float(seconds))


def me() -> str:
    """This process as an owner: ``host:pid:start`` (computed afresh: forks have new pids)."""
    pid = os.getpid()
    return f"{this_host()}:{pid}:{_start_time(pid)}"


def parse_owners(text: str | None) -> list[str]:
    return [o for o in (text or "").split(",") if o]


def alive(owner: str) -> bool | None:
    """True or False for an owner on this machine; None when it is on another one."""
    host, pid, start = owner.rsplit(":", 2)
    if host != this_host():
        return None
    return pid.isdigit() and _start_time(int(pid)) == start


def gone(owner: str, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether ``owner`` has ended: on this machine, from ``/proc``; on another one, once its
    heartbeat is older than ``stale_after()`` (without a heartbeat we cannot know: not gone)."""
    state = alive(owner)
    if state is not None:
        return not state
    return heartbeat is not None and (now or time.time()) - heartbeat > stale_after()


def is_stale(owners: list[str], heartbeat: float | None, now: float | None = None) -> bool:
    """No owner of a record with one heartbeat lives (a record without owners is not ours)."""
    return bool(owners) and all(gone(o, heartbeat, now) for o in owners)


def beat_tag(owner: str) -> str:
    """The tag of one owner's own heartbeat on a shared record (a tag key cannot hold ``:``)."""
    return f"{HEARTBEAT_TAG}.{hashlib.sha256(owner.encode()).hexdigest()[:12]}"


def owner_beats(tags: dict[str, str]) -> dict[str, float | None]:
    """Every owner of a record with its last heartbeat: its own tag (the owners of a shared
    parent each beat), else the record's (a run has one owner)."""
    shared = tags.get(HEARTBEAT_TAG)
    beats = {}
    for owner in parse_owners(tags.get(OWNERS_TAG)):
        beat = tags.get(beat_tag(owner)) or shared
        beats[owner] = float(beat) if beat else None
    return beats


def living(tags: dict[str, str], now: float | None = None) -> list[str]:
    """The owners of a record that have not ended (see ``gone``)."""
    return [o for o, beat in owner_beats(tags).items() if not gone(o, beat, now)]


class Heartbeat:
    """One daemon thread per process calling every registered beat each ``heartbeat_seconds()``.

    A beat that fails (a store that is down) is skipped: its record will be judged by its
    owner's pid on this machine, or end stale elsewhere, which is the truth either way.
    """

    def __init__(self) -> None:
        self._beats: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, key: str, beat: Callable[[], None]) -> None:
        with self._lock:
            self._beats[key] = beat
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
                self._thread.start()

    def remove(self, key: str) -> None:
        with self._lock:
            self._beats.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(heartbeat_seconds())
            with self._lock:
                beats = list(self._beats.values())
            for beat in beats:
                try:
                    beat()
                except Exception:  # see the class docstring
                    continue


HEARTBEAT = Heartbeat()


def ended_note(owners: list[str]) -> str:
    """The tag a stale record gets: whose process vanished, and who noticed when."""
    gone = ", ".join(f"pid {o.rsplit(':', 2)[1]} on {o.rsplit(':', 2)[0]}" for o in owners)
    noticed = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"its process ({gone}) ended without closing it; ended by pid {os.getpid()} at {noticed}"


def end_stale_runs(client: object, experiment_id: str) -> int:
    """End every RUNNING run of the experiment that no live process owns, as KILLED."""
    ended = 0
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
        beats = owner_beats(run.data.tags)
        if beats and not living(run.data.tags):
            client.set_tag(run.info.run_id, ENDED_TAG, ended_note(list(beats)))
            last = max((b for b in beats.values() if b is not None), default=None)
            end_time = int(last * 1000) if last else None  # its last sign of life
            client.set_terminated(run.info.run_id, "KILLED", end_time)
            ended += 1
    return ended
