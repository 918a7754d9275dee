"""What a study counts and what a summary ranks, on scripted trials (no training): budgets
that add up, resumption that refuses other settings, and a best that is never a pruned or a
never-learned trial."""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from pipeline.tracking import lifecycle
from pipeline.train import compose
from sweeps import budget, settings, storage, summary
from sweeps import study as st
from sweeps.best import best_of, best_trial
from sweeps.space import SweepError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def trial(state: TrialState, **user_attrs: object) -> FrozenTrial:
    value = 0.5 if state == TrialState.COMPLETE else None
    return create_trial(state=state, value=value, user_attrs=user_attrs)


COMPLETE, PRUNED = trial(TrialState.COMPLETE), trial(TrialState.PRUNED)
FAILED = trial(TrialState.FAIL, failed_reason="Diverged: loss is no longer finite")
INTERRUPTED = trial(TrialState.FAIL, interrupted="KeyboardInterrupt")
RUNNING, WAITING = trial(TrialState.RUNNING), trial(TrialState.WAITING)


def test_a_trial_counts_once_it_ran_to_an_outcome() -> None:
    assert [storage.counted(t) for t in (COMPLETE, PRUNED, FAILED)] == [True] * 3
    assert [storage.counted(t) for t in (INTERRUPTED, RUNNING, WAITING)] == [False] * 3


def sweep_settings(tmp_path: Path, *overrides: str) -> settings.Settings:
    base = ["tracking=none", "data.max_train=100", "trainer.epochs=3"]
    raw = compose(
        [*base, "sweep.groups=[]", f"study.storage=journal:{tmp_path}/s.journal", *overrides],
        config_name="sweeps",
    )
    return settings.settings_from(raw, base)


def test_the_budget_line_always_adds_up(tmp_path: Path) -> None:
    s = replace(sweep_settings(tmp_path), n_trials=9, min_complete=0)
    trials = [COMPLETE, COMPLETE, PRUNED, FAILED, INTERRUPTED, INTERRUPTED, RUNNING]
    assert budget.budget_line(trials, s) == (
        "4 done of 9 trials: 2 complete, 1 pruned, 1 failed, 1 running (2 interrupted, run again)"
    )
    s = replace(s, min_complete=3)
    assert budget.budget_line([COMPLETE, PRUNED], s) == (
        "2 done of 9 trials, or 3 complete: 1 complete, 1 pruned, 0 failed"
    )


@pytest.mark.parametrize(
    ("trials", "n_trials", "min_complete", "more"),
    [
        ([], 1, 0, True),
        ([COMPLETE, PRUNED], 3, 0, True),
        ([COMPLETE, PRUNED, FAILED], 3, 0, False),
        ([COMPLETE, PRUNED, RUNNING], 3, 0, False),  # the running one will count
        ([COMPLETE, PRUNED, INTERRUPTED, WAITING], 3, 0, True),  # those run again
        ([COMPLETE, PRUNED], 5, 2, True),
        ([COMPLETE, COMPLETE], 5, 2, False),  # enough complete ones
        ([COMPLETE, RUNNING], 5, 2, False),
        ([COMPLETE, PRUNED, PRUNED], 3, 2, False),  # the budget ends it first
    ],
)
def test_a_part_wants_more_until_its_budget_or_its_complete_trials(
    tmp_path: Path, trials: list, n_trials: int, min_complete: int, more: bool
) -> None:
    s = replace(sweep_settings(tmp_path), n_trials=n_trials, min_complete=min_complete)
    assert budget.wants_more(trials, s) is more


def test_resume_keeps_the_settings_and_refuses_others(tmp_path: Path, caplog) -> None:
    caplog.set_level("INFO", logger="sweeps.study")
    s = sweep_settings(tmp_path, "n_trials=2")
    [(part, study)] = st.resume(s, 3)
    assert part.name == s.name == study.study_name
    assert study.user_attrs["settings"] == settings.fingerprint(s, part)
    assert study.metric_names == ["val_loss"] and study.direction.name == "MINIMIZE"
    assert f"{s.name}: 0 done of 2 trials: 0 complete, 0 pruned, 0 failed" in caplog.text
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=0.3))
    [(_, again)] = st.resume(s, 3)  # the same settings: resumed
    assert len(again.get_trials()) == 1
    assert "1 done of 2 trials" in caplog.text
    other = sweep_settings(
        tmp_path, "n_trials=2", "study.objective=val_accuracy", "study.pruner=none"
    )
    with pytest.raises(SweepError) as err:
        st.resume(replace(other, name=s.name), 3)
    assert str(err.value) == (
        f"study {s.name!r} was made with other settings (objective was val_loss, now "
        "val_accuracy; pruner was median, now none): run it with those, or start a new study "
        "with study.name=<new name>"
    )


def test_resume_gives_the_pruner_the_longest_training(tmp_path: Path) -> None:
    s = sweep_settings(tmp_path, "study.pruner=hyperband", "study.name=hb")
    [(_, study)] = st.resume(s, 9)
    assert (study.pruner._min_resource, study.pruner._max_resource) == (2, 9)


def test_a_trial_interrupted_before_it_began_is_failed_to_run_again(
    tmp_path: Path, monkeypatch
) -> None:
    s = sweep_settings(tmp_path, "n_trials=2")
    [(part, study)] = st.resume(s, 3)

    def interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "own", interrupted)
    with pytest.raises(KeyboardInterrupt):
        st.next_trial(s, study, part)
    [trial] = study.get_trials()
    assert trial.state == TrialState.FAIL and not storage.counted(trial)


def test_resume_fails_the_trials_whose_owner_is_gone(tmp_path: Path) -> None:
    s = sweep_settings(tmp_path, "n_trials=2")
    [(_, study)] = st.resume(s, 3)
    orphan = study.ask()
    dead = f"{lifecycle.this_host()}:{2**22 + 11}:1"
    orphan.set_user_attr(storage.OWNER_ATTR, dead)
    [(_, study)] = st.resume(s, 3)
    [failed] = study.get_trials()
    assert failed.state == TrialState.FAIL and not storage.counted(failed)
    assert failed.user_attrs["interrupted"].startswith("its process (pid 4194315 on")


def test_next_trial_asks_within_the_budget_and_owns_it(tmp_path: Path) -> None:
    s = sweep_settings(tmp_path, "n_trials=2")
    [(part, study)] = st.resume(s, 3)
    first = st.next_trial(s, study, part)
    assert first.user_attrs[storage.OWNER_ATTR] == lifecycle.me()
    assert storage.HEARTBEAT_ATTR in study.get_trials()[0].user_attrs  # a journal's beat
    second = st.next_trial(s, study, part)
    assert (first.number, second.number) == (0, 1)
    assert st.next_trial(s, study, part) is None  # two running: the budget is taken
    for t in (first, second):
        storage.disown(t)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_two_launchers_asking_in_turn_draw_what_one_launcher_would(tmp_path: Path, sampler) -> None:
    """A trial's sampler is seeded from its number under the study's lock: launchers that
    interleave their asks (each its own study object on one storage) never draw the same
    point, and draw what a single launcher would have."""

    def draws(s: settings.Settings, launchers: int) -> list[float]:
        [(part, _)] = st.resume(s, 3)
        studies = [st.open_study(s, part, 3) for _ in range(launchers)]
        lrs = []
        for i in range(6):
            study = studies[i % launchers]
            trial = st.next_trial(s, study, part)
            lrs.append(trial.suggest_float("optimizer.lr", 1e-3, 1.0, log=True))
            storage.disown(trial)
            study.tell(trial, 0.5)
        return lrs

    s = sweep_settings(tmp_path, "n_trials=6", f"study.sampler={sampler}")
    two = draws(s, 2)
    assert len(set(two)) == 6
    one = replace(s, storage=f"journal:{tmp_path}/one.journal")
    assert draws(one, 1) == two


def test_a_trial_running_on_another_host_is_named_with_when_it_runs_again(
    tmp_path: Path, monkeypatch
) -> None:
    # the audit: a re-run while a dead host's trial was within its timeout exited 0, silent
    monkeypatch.setenv(lifecycle.STALE_AFTER_ENV, "600")
    s = replace(sweep_settings(tmp_path), n_trials=6, min_complete=0)
    beat = 1_800_000_000.0
    elsewhere = trial(TrialState.RUNNING, owner="host-b/boot/ns:4242:99", heartbeat=beat)
    elsewhere.number = 5
    assert budget.running_note([COMPLETE] * 5, s) is None
    after = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(beat + 600))
    assert budget.running_note([*[COMPLETE] * 5, elsewhere], s) == (
        f"5 done of 6, 1 running: #5 on host-b (pid 4242), re-run after {after} if it does "
        "not finish (a re-run before then leaves it to its host)"
    )


def test_asking_on_a_heartbeat_storage_is_silent(tmp_path: Path) -> None:
    # Optuna warned once per trial on PostgreSQL: its heartbeat is ours (``storage.own``)
    s = sweep_settings(tmp_path, "n_trials=1", f"study.storage=sqlite:///{tmp_path}/o.db")
    [(part, study)] = st.resume(s, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trial = st.next_trial(s, study, part)
    storage.disown(trial)
    assert not [w for w in caught if "Heartbeat" in str(w.message)]


def test_a_grid_larger_than_the_budget_is_a_seeded_sample_enqueued_once(tmp_path: Path) -> None:
    s = sweep_settings(tmp_path, "n_trials=3", "study.sampler=grid")
    grid = {
        "model.activation": {"type": "categorical", "choices": ["tanh", "relu"]},
        "trainer.batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    }
    s = replace(s, params=grid)
    [(_, study)] = st.resume(s, 3)
    combos = [
        {"model.activation": a, "trainer.batch_size": b}
        for a in ("tanh", "relu")
        for b in (16, 32, 64)
    ]
    chosen = sorted(np.random.default_rng(s.seed).permutation(6)[:3])
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [combos[i] for i in chosen]
    st.resume(s, 3)  # a second launcher enqueues nothing more
    assert len(study.get_trials()) == 3
    whole = replace(s, n_trials=6)
    other = optuna.load_study(study_name=s.name, storage=storage.open_storage(s.storage))
    st.enqueue_grid(whole, other)
    assert len(other.get_trials()) == 6  # only the three not yet there


def test_pruners_and_samplers_are_the_configured_ones(tmp_path: Path) -> None:
    s = sweep_settings(tmp_path)
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    for name, kind in pruners.items():
        assert type(st.make_pruner(replace(s, pruner=name), 7)) is kind
    threshold = st.make_pruner(replace(s, pruner="threshold", threshold=0.25), 7)
    assert threshold._upper == 0.25 and np.isneginf(threshold._lower)
    maximising = replace(s, pruner="threshold", threshold=0.5, objective="val_accuracy")
    assert st.make_pruner(maximising, 7)._lower == 0.5
    hyperband = st.make_pruner(replace(s, pruner="hyperband"), 7)
    assert (hyperband._min_resource, hyperband._max_resource) == (2, 7)
    median = st.make_pruner(s, 7)
    assert (median._n_startup_trials, median._n_warmup_steps) == (4, 5)
    owed = st.make_pruner(replace(s, n_trials=9, min_complete=4), 7)  # complete ones are owed
    assert (type(owed.inner), owed.n_trials, owed.owed) == (optuna.pruners.MedianPruner, 9, 4)


def scripted_study(direction: str, rows: list[tuple], journal: Path | None = None) -> optuna.Study:
    """A real study, in a journal file when given, named as the product names them: trials of
    (state, lr, activation, value, learned), its metric named as ``study.resume`` names it
    (Optuna 5 then calls the trials table's value column after the metric)."""
    backend = optuna.storages.journal.JournalFileBackend(str(journal)) if journal else None
    study = optuna.create_study(
        direction=direction,
        storage=optuna.storages.JournalStorage(backend) if backend else None,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_loss" if direction == "minimize" else "val_accuracy"])
    lr = FloatDistribution(0.001, 10.0, log=True)
    for state, rate, activation, value, learned in rows:
        study.add_trial(
            create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"optimizer.lr": rate},
                distributions={"optimizer.lr": lr},
                user_attrs={"activation": activation, "learned": learned},
                intermediate_values={1: 0.9, 2: 0.01} if state == TrialState.PRUNED else {},
            )
        )
    return study


def test_the_metric_name_renames_optunas_own_value_column(tmp_path: Path) -> None:
    """The trap behind a wrong winner: the reason no table column is ever read for a value."""
    study = scripted_study("minimize", [(TrialState.COMPLETE, 0.2, "relu", 0.3, True)])
    columns = set(study.trials_dataframe().columns)
    assert "value" not in columns and "value_val_loss" in columns


def best_lrs(study: optuna.Study, activation: str | None = None) -> list[float]:
    """The best trial's lr among the trials of one activation (a part of its own)."""
    if activation is not None:
        part = optuna.create_study(direction=study.direction.name.lower())
        for t in study.get_trials():
            if t.user_attrs["activation"] == activation:
                part.add_trial(t)
        study = part
    found = best_trial(study)
    return [] if found is None else [found.params["optimizer.lr"]]


def test_the_best_of_each_group_is_complete_learned_and_best(tmp_path: Path) -> None:
    rows = [
        (TrialState.PRUNED, 0.1, "relu", None, True),  # its last report is the lowest
        (TrialState.COMPLETE, 0.2, "relu", 0.30, True),
        (TrialState.COMPLETE, 0.3, "relu", 0.10, False),  # lowest, but learned nothing
        (TrialState.COMPLETE, 0.4, "relu", 0.20, True),
        (TrialState.COMPLETE, 0.5, "tanh", 0.50, True),
        (TrialState.COMPLETE, 0.6, "tanh", 0.40, True),
        (TrialState.FAIL, 0.7, "tanh", None, True),
        (TrialState.COMPLETE, 0.8, "sigmoid", 0.05, False),  # no group best at all
    ]
    study = scripted_study("minimize", rows, tmp_path / "min.journal")
    assert [best_lrs(study, a) for a in ("relu", "tanh", "sigmoid")] == [[0.4], [0.6], []]
    assert best_lrs(study) == [0.4]  # the never-learned 0.05 and 0.10 lose to it
    rows = [(TrialState.COMPLETE, r, a, v, learned) for _, r, a, v, learned in rows if v]
    study = scripted_study("maximize", rows, tmp_path / "max.journal")
    assert [best_lrs(study, a) for a in ("relu", "tanh")] == [[0.2], [0.5]]  # the highest


def test_the_best_is_the_real_best_whatever_the_order_of_the_trials(tmp_path: Path) -> None:
    """The winner bug: the first trial passed for the best. Here it is the worst."""
    values = [0.129, 0.0891, 0.0806, 0.0952, 0.0871, 0.101]
    rows = [(TrialState.COMPLETE, 0.1 * (i + 1), "relu", v, True) for i, v in enumerate(values)]
    study = scripted_study("minimize", rows, tmp_path / "s.journal")
    found = best_trial(study)
    assert (found.number, found.value) == (2, 0.0806)
    parts = [
        (settings.Part("a", {}), study),
        (
            settings.Part("b", {}),
            scripted_study("minimize", [(TrialState.COMPLETE, 0.9, "relu", 0.0807, True)]),
        ),
    ]
    part, found = best_of(parts)
    assert (part.name, found.value) == ("a", 0.0806)
    table = summary.trials_table(parts)
    assert table["objective"].tolist() == [*values, 0.0807]  # Optuna's own values


def test_the_trials_table_has_a_row_per_trial_with_its_group(tmp_path: Path) -> None:
    rows = [
        (TrialState.COMPLETE, 0.2, "relu", 0.30, True),
        (TrialState.PRUNED, 0.1, "relu", None, True),
    ]
    parts = [
        (
            settings.Part("s:model.activation=tanh", {"model.activation": "tanh"}),
            optuna.create_study(),  # no trial yet: no rows, and the next parts still count
        ),
        (
            settings.Part("s:model.activation=relu", {"model.activation": "relu"}),
            scripted_study("minimize", rows),
        ),
        (
            settings.Part("s:model.activation=sigmoid", {"model.activation": "sigmoid"}),
            scripted_study("minimize", rows[:1]),
        ),
    ]
    table = summary.trials_table(parts)
    assert list(table.columns[:2]) == ["number", "model.activation"]
    assert table["model.activation"].tolist() == ["relu", "relu", "sigmoid"]
    assert list(table.index) == [0, 1, 2]  # one row per trial, numbered across parts
    table = table.iloc[:2]
    assert table["state"].tolist() == ["COMPLETE", "PRUNED"]
    assert table["objective"].tolist()[0] == 0.30 and np.isnan(table["objective"].tolist()[1])
    assert {"optimizer.lr", "learned", "activation", "seconds"} <= set(table.columns)
    assert "value" not in table and "duration" not in table
    only_pruned = scripted_study("minimize", rows[1:])
    table = summary.trials_table([(settings.Part("p", {}), only_pruned)])
    assert table["objective"].isna().all()  # no trial has a value yet
    assert summary.trials_table([(settings.Part("e", {}), optuna.create_study())]).empty
    running = scripted_study("minimize", rows[:1])
    running.ask()  # another launcher's trial, still running: no duration yet
    table = summary.trials_table([(settings.Part("r", {}), running)])
    assert table["state"].tolist() == ["COMPLETE", "RUNNING"] and np.isnan(table["seconds"][1])
