"""Optuna sweeps on small subsets: counts, resume, pruning, workers, PostgreSQL, divergence."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from pipeline.config import ROOT
from pipeline.train import compose
from sweeps import settings, space, storage
from sweeps import study as st
from tests.conftest import new_store
from tests.processes import signal_when

SMALL = ["data.max_train=3000", "data.max_test=500", "trainer.epochs=4", "sweep.groups=[]"]


@pytest.fixture(autouse=True)
def _migrated(tmp_path: Path, migrated_store: Path) -> None:
    new_store(tmp_path, migrated_store)  # a store without the 4 s of migrations


def sweep(
    tmp: Path, *args: str, storage: str | None = None, check: bool = True, **popen
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "sweeps",
        *SMALL,
        f"tracking.uri=sqlite:///{tmp}/mlflow.db",
        f"study.storage={storage or f'journal:{tmp}/study.journal'}",
        f"hydra.run.dir={tmp}/hydra",
        *args,
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def load(tmp: Path, storage: str | None = None) -> optuna.Study:
    """The one study of a sweep without groups (named after its settings)."""
    url = storage_of(storage or f"journal:{tmp}/study.journal")
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url)


def storage_of(url: str) -> optuna.storages.BaseStorage:
    return storage.open_storage(url)


def child_runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if r.data.tags.get("kind") == "trial"]


def test_study_runs_n_trials_with_child_runs_and_summary(tmp_path: Path) -> None:
    out = sweep(tmp_path, "n_trials=4")
    assert "best val_loss" in out.stdout
    study = load(tmp_path)
    assert len(study.trials) == 4 and all(storage.counted(t) for t in study.trials)
    children = child_runs(tmp_path)
    assert len(children) == 4
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent_id = study.user_attrs["mlflow_parent_run_id"]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["optuna.sampler"] == "tpe"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent_id}
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == {
        c.info.run_id for c in children
    }
    artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert {"trials.csv", "trials.md", "optimization_history.png"} <= artifacts
    # the best, by hand from the journal's trials (metric names set: no "value" column)
    assert study.metric_names == ["val_loss"]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = min((t for t in done if t.user_attrs["learned"]), key=lambda t: t.value)
    assert parent.data.metrics["best_value"] == pytest.approx(best.value)
    assert parent.data.tags["best.run_id"] == best.user_attrs["mlflow_run_id"]
    assert parent.data.tags["best.optimizer.lr"] == str(best.params["optimizer.lr"])
    assert f"/runs/{best.user_attrs['mlflow_run_id']})" in parent.data.tags["mlflow.note.content"]
    table = pd.read_csv(client.download_artifacts(parent_id, "trials.csv", str(tmp_path)))
    assert table.set_index("number")["objective"].dropna().to_dict() == pytest.approx(
        {t.number: t.value for t in done}
    )
    assert f"best val_loss {best.value:.4f}" in out.stdout
    # run again: nothing missing, nothing re-run
    again = sweep(tmp_path, "n_trials=4")
    assert "4 done of 4 trials: " in again.stdout and "[worker" not in again.stdout
    assert len(load(tmp_path).trials) == 4


def test_resume_after_interruption_reaches_exactly_n(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "sweeps",
        *SMALL,
        "n_trials=6",
        "trainer.epochs=12",
        "trainer.patience=12",
        "tracking=none",
        f"study.storage=journal:{tmp_path}/study.journal",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while "#1 " not in proc.stdout.readline():  # two trials finished
        assert proc.poll() is None, proc.stderr.read()

    def inside_a_trial() -> bool:  # training, well before its last epoch
        return any(
            t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < 11
            for t in load(tmp_path).trials
        )

    signal_when(proc, inside_a_trial, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err.strip().splitlines() == [
        "interrupted: run the same command again to resume the study"
    ]
    interrupted = load(tmp_path)
    done = sum(storage.counted(t) for t in interrupted.trials)
    assert 2 <= done < 6
    assert any(t.state == TrialState.FAIL and not storage.counted(t) for t in interrupted.trials)
    out = sweep(tmp_path, "n_trials=6", "trainer.epochs=12", "trainer.patience=12", "tracking=none")
    assert f"{done} done of 6 trials" in out.stdout and "1 interrupted, run again" in out.stdout
    assert sum(storage.counted(t) for t in load(tmp_path).trials) == 6


def test_always_pruning_pruner_marks_trials_pruned(tmp_path: Path) -> None:
    sweep(tmp_path, "n_trials=3", "study.pruner=threshold", "study.threshold=0")
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 3
    assert all(t.last_step == 1 for t in study.trials)  # pruned at the first report
    # pruned runs are visibly not results: KILLED, named so, tagged, no test metrics
    runs = child_runs(tmp_path)
    assert {r.info.status for r in runs} == {"KILLED"}
    assert all(r.info.run_name.endswith("(pruned at epoch 1)") for r in runs)
    assert {r.data.tags["outcome"] for r in runs} == {"pruned"}
    assert not [r for r in runs if "test_accuracy" in r.data.metrics]


def test_two_workers_finish_exactly_n_distinct_trials(tmp_path: Path) -> None:
    out = sweep(tmp_path, "n_trials=5", "workers=2", "tracking=none")
    trials = load(tmp_path).trials
    # run by the spawned workers (how the 5 split between them depends on timing: not asserted)
    assert 1 <= len({t.user_attrs[storage.OWNER_ATTR] for t in trials}) <= 2
    lines = [line for line in out.stdout.splitlines() if line.startswith("[worker ")]
    assert len(lines) == 5 and {line[:10] for line in lines} <= {"[worker 0]", "[worker 1]"}
    assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]
    assert all(storage.counted(t) for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 5


def test_diverging_trial_fails_and_the_sweep_goes_on(tmp_path: Path) -> None:
    raw = compose(
        [
            "data.max_train=2000",
            "data.max_test=200",
            "trainer.epochs=3",
            "tracking=none",
            "trainer.progress=false",
            "sweep=lr_activation",
            "sweep.groups=[]",
            f"study.storage=journal:{tmp_path}/s.journal",
            "n_trials=4",
            "study.sampler=random",
        ],
        config_name="sweeps",
    )
    s = settings.settings_from(
        raw,
        [
            "data.max_train=2000",
            "data.max_test=200",
            "trainer.epochs=3",
            "tracking=none",
            "trainer.progress=false",
        ],
    )
    s = settings.Settings(
        **{
            **s.__dict__,
            "params": {
                "optimizer.lr": {"type": "categorical", "choices": [0.1, 1.0e6]},
                "model.activation": {"type": "categorical", "choices": ["relu"]},
            },
        }
    )
    st.run_workers([st.Task(s, None, 3)], s.workers)
    trials = optuna.load_study(study_name=s.name, storage=storage_of(s.storage)).trials
    assert len(trials) == 4 and all(storage.counted(t) for t in trials)
    for t in trials:
        diverges = t.params["optimizer.lr"] > 1
        assert (t.state == TrialState.FAIL) == diverges
        assert ("failed_reason" in t.user_attrs) == diverges


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sweep=nope", "Could not find 'sweep/nope'"),
        ("n_trials=0", "n_trials=0 is invalid"),
        ("study.pruner=always", "study.pruner='always' is invalid"),
    ],
)
def test_bad_sweep_settings_fail_before_any_trial(tmp_path: Path, override: str, message: str):
    out = sweep(tmp_path, override, check=False)
    assert out.returncode == 1 and message in out.stderr
    assert not (tmp_path / "study.journal").exists()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"optimizer.lr": {"type": "float", "low": 1.0, "high": 0.1}}, "low=1 > high=0.1"),
        (
            {"optimizer.lrate": {"type": "float", "low": 0.1, "high": 1}},
            "sweep.params.optimizer.lrate=0.1 is not a training setting",
        ),
        (
            {"model.activation": {"type": "categorical", "choices": ["swish"]}},
            "model.activation='swish' is invalid",
        ),
        (  # every choice is checked, not only the first
            {"model.activation": {"type": "categorical", "choices": ["tanh", "relux"]}},
            "sweep.params.model.activation=relux gives model.activation='relux' is invalid",
        ),
        (  # both ends of a range
            {"optimizer.gamma": {"type": "float", "low": 0.5, "high": 1.5}},
            "sweep.params.optimizer.gamma=1.5 gives optimizer.gamma=1.5 is invalid",
        ),
        (
            {"regularizer": {"type": "categorical", "choices": ["l2", "l3"]}},
            "sweep.params.regularizer=l3 is not a training setting",
        ),
        (  # a conditional param is checked where its condition holds
            {
                "regularizer": {"type": "categorical", "choices": ["none", "l2"]},
                "regularizer.lam": {
                    "type": "float",
                    "low": -1.0,
                    "high": 1.0,
                    "when": {"regularizer": ["l2"]},
                },
            },
            "regularizer.lam=-1.0 is invalid",
        ),
        ({"optimizer.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "must be > 0"),
        (
            {"regularizer.lam": {"type": "float", "low": 0.1, "high": 1, "when": {"x": [1]}}},
            "not an earlier param",
        ),
        ({"optimizer.lr": {"type": "uniform"}}, "type='uniform' is invalid"),
    ],
)
def test_bad_search_space_is_a_clear_error(params: dict, message: str) -> None:
    raw = compose(["tracking=none"], config_name="sweeps")
    s = settings.Settings(
        **{
            **settings.settings_from(raw, ["tracking=none"]).__dict__,
            "params": params,
            "groups": (),
        }
    )
    with pytest.raises(space.SweepError, match=message.replace("[", r"\[").replace("(", r"\(")):
        settings.check(s)


def test_conditional_parameter_only_when_regularized() -> None:
    params = space.parse(
        "r",
        {
            "regularizer": {"type": "categorical", "choices": ["none", "l2"]},
            "regularizer.lam": {
                "type": "float",
                "low": 1e-4,
                "high": 1e-2,
                "log": True,
                "when": {"regularizer": ["l1", "l2"]},
            },
        },
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [space.sample(study.ask(), params, {}) for _ in range(20)]
    assert {tuple(d) for d in drawn} == {("regularizer",), ("regularizer", "regularizer.lam")}
    assert all(("regularizer.lam" in d) == (d["regularizer"] == "l2") for d in drawn)


def test_two_workers_on_postgresql(tmp_path: Path, postgres: str) -> None:
    out = sweep(tmp_path, "n_trials=4", "workers=2", storage=postgres)
    assert "[worker 1]" in out.stdout
    trials = load(tmp_path, storage=postgres).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(storage.counted(t) for t in trials)
    assert len(child_runs(tmp_path)) == 4


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


@pytest.mark.parametrize(
    ("done", "prunes"),
    [
        (["PRUNED"] * 2, True),  # 3 trials left for 2 owed: one may still go
        (["PRUNED"] * 3, False),  # 2 left (this one included) for 2 owed: both run out
        (["PRUNED"] * 3 + ["COMPLETE"], False),
        (["COMPLETE"] * 2, True),  # nothing owed any more
    ],
)
def test_a_group_keeps_enough_trials_unpruned_to_reach_its_minimum(done, prunes) -> None:
    """n_trials=5, min_complete=2: the pruner never takes a trial the minimum needs."""
    study = optuna.create_study()
    for state in done:
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState[state],
                value=1.0 if state == "COMPLETE" else None,
                intermediate_values={1: 1.0},
            )
        )
    trial = study.ask()
    frozen = study.get_trials(deepcopy=False)[trial.number]
    assert st.Owed(AlwaysPrune(), n_trials=5, owed=2).prune(study, frozen) is prunes


def test_a_study_on_other_data_differs_in_its_settings() -> None:
    from sweeps.settings import differences

    made = {"training": {}, "space": {}, "objective": "v", "pruner": "p", "code_version": "c"}
    old, new = {**made, "data_digest": "aaaa"}, {**made, "data_digest": "bbbb"}
    assert differences(old, new) == ["data_digest was aaaa, now bbbb"]
    assert differences(new, new) == []
