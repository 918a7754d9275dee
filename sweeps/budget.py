"""What a study's budget says: how its trials count, whether a part wants another, whether
the study is complete, and where the trials that keep it open are running."""

from __future__ import annotations

import time
from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.tracking import lifecycle
from sweeps import storage
from sweeps.settings import Part, Settings


def budget_line(trials: Sequence[FrozenTrial], s: Settings) -> str:
    """Where a part stands, with counts that always add up."""
    states = [t.state for t in trials]
    done = sum(storage.counted(t) for t in trials)
    failed = sum(t.state == TrialState.FAIL and storage.counted(t) for t in trials)
    interrupted = states.count(TrialState.FAIL) - failed
    goal = f"{s.n_trials} trials" + (f", or {s.min_complete} complete" if s.min_complete else "")
    line = (
        f"{done} done of {goal}: {states.count(TrialState.COMPLETE)} complete, "
        f"{states.count(TrialState.PRUNED)} pruned, {failed} failed"
    )
    if states.count(TrialState.RUNNING):
        line += f", {states.count(TrialState.RUNNING)} running"
    if interrupted:
        line += f" ({interrupted} interrupted, run again)"
    return line


def running_note(trials: Sequence[FrozenTrial], s: Settings) -> str | None:
    """For a part left incomplete by running trials of other processes: where they run, and
    when each one counts as gone (its last heartbeat plus ``tracking.stale_after``), after
    which a re-run runs it again. None when no trial is running."""
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return None
    where = []
    for t in running:
        host, pid, _ = t.user_attrs.get(storage.OWNER_ATTR, "?:?:?").rsplit(":", 2)
        beat = t.user_attrs.get(storage.HEARTBEAT_ATTR, t.datetime_start.timestamp())
        after = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(beat + lifecycle.stale_after()))
        where.append(f"#{t.number} on {host.split('/')[0]} (pid {pid}), re-run after {after}")
    done = sum(storage.counted(t) for t in trials)
    return (
        f"{done} done of {s.n_trials}, {len(running)} running: {'; '.join(where)} if it does "
        "not finish (a re-run before then leaves it to its host)"
    )


def wants_more(trials: Sequence[FrozenTrial], s: Settings) -> bool:
    """Whether a part needs another trial, counting the running ones as if they will count."""
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if sum(storage.counted(t) for t in trials) + running >= s.n_trials:
        return False
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return not s.min_complete or complete + running < s.min_complete


def complete(s: Settings, studies: Sequence[tuple[Part, optuna.Study]]) -> bool:
    """Every part has spent its budget and no trial is running: nothing is left to do."""
    for _, study in studies:
        trials = study.get_trials(deepcopy=False)
        if wants_more(trials, s) or any(t.state == TrialState.RUNNING for t in trials):
            return False
    return True
