"""Helpers for tests that start commands and signal them at a known point: conditions, not
sleeps. A process is frozen (SIGSTOP) while the condition is read, so what the test sees is
still true when the signal lands."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

POLL = 0.05  # seconds between looks at a condition; the deadline, not this, bounds a wait


def state(pid: int) -> str:
    """The process's state letter (R, S, T, Z...) or '' if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL)


def signal_when(
    proc: subprocess.Popen, condition: Callable[[], bool], sig: int, pid: int | None = None
) -> None:
    """Send ``sig`` to ``pid`` (default: the process) at a moment when ``condition`` holds,
    checked while the process is frozen, so it still holds when the signal is delivered."""
    act_when(proc, condition, lambda: os.kill(pid or proc.pid, sig), pid)


def act_when(
    proc: subprocess.Popen,
    condition: Callable[[], bool],
    action: Callable[[], None],
    pid: int | None = None,
) -> None:
    """Do ``action`` while ``pid`` (default: the process) is frozen at a moment when
    ``condition`` holds: the process goes on in the world the action made."""
    pid = pid or proc.pid
    deadline = time.monotonic() + 300
    while True:
        if proc.poll() is not None:
            why = f"exit {proc.returncode} " + (proc.stderr.read() if proc.stderr else "")
            raise AssertionError(f"the command ended before the condition held: {why}"[:4000])
        assert time.monotonic() < deadline, "the condition never held"
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: state(pid) in ("T", "t", "Z", ""), "the process to stop")
        try:
            if condition():
                action()
                return
        finally:
            if state(pid):
                os.kill(pid, signal.SIGCONT)
        time.sleep(POLL)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
