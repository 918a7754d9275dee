"""Reuse: only a FINISHED run of the very same computation (config, data, the core's code) is
reused, ``report.force`` trains anew, and a report with unchanged inputs adds no run.

Runs are made directly in a fresh store with the tags and status each case needs; the pool
that trains is replaced by a recorder, so nothing here trains but the two real workers that
claim one run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline.tracking import provenance, store
from pipeline.tracking.runs import PARENT_RUN_ENV, find_finished
from sweeps import jobs
from sweeps.report import __main__ as report
from sweeps.report.plan import ReportSchema

IDENTITY = {"config_hash": "c1", "data.digest": "d1", "code_version": "v1"}


def make_run(uri: str, experiment: str, status: str, tags: dict, start: int) -> str:
    client, experiment_id = store.open_experiment(uri, experiment)
    run = client.create_run(experiment_id, start_time=start, tags=tags)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_only_the_newest_finished_run_with_every_tag_is_found(store: str) -> None:
    now = int(time.time() * 1000)
    make_run(store, "reuse", "FINISHED", IDENTITY, now - 3000)
    newest = make_run(store, "reuse", "FINISHED", IDENTITY, now - 2000)
    for status in ("FAILED", "KILLED", "RUNNING"):  # newer, but never reused
        make_run(store, "reuse", status, IDENTITY, now)
    make_run(store, "reuse", "FINISHED", {**IDENTITY, "code_version": "v0"}, now)
    assert find_finished(store, "reuse", IDENTITY) == newest
    assert find_finished(store, "reuse", {**IDENTITY, "code_version": "v2"}) is None
    assert find_finished(store, "reuse", {**IDENTITY, "extra": "x"}) is None
    assert find_finished(store, "other", IDENTITY) is None


def test_failed_killed_or_running_runs_alone_are_never_reused(store: str) -> None:
    for status in ("FAILED", "KILLED", "RUNNING"):
        make_run(store, "reuse", status, IDENTITY, int(time.time() * 1000))
    assert find_finished(store, "reuse", IDENTITY) is None


def job(uri: str, *overrides: str) -> jobs.Job:
    base = (f"tracking.uri={uri}", "tracking.experiment=reuse", "data.max_train=100")
    return jobs.Job((*base, *overrides), {"kind": "report-run"})


@pytest.fixture
def trained(monkeypatch) -> list[dict]:
    """What the pool was asked to train (it trains nothing): one dict of job keys per call."""
    calls: list[dict] = []

    def pool(todo, configs, workers, parents, force):
        assert configs.keys() >= todo.keys()  # what orders the pool: longest first
        assert os.environ.get(PARENT_RUN_ENV) is None  # each job names its group's run itself
        calls.append({k: (parents[k[0]], workers) for k in todo})
        return {k: f"trained {k[0]} {k[1]}" for k in todo}, {}

    monkeypatch.setattr(jobs, "_pool", pool)
    return calls


def test_ensure_reuses_finished_runs_of_the_same_code_only(store: str, trained, caplog) -> None:
    caplog.set_level("INFO", logger="sweeps.jobs")
    todo = {
        ("relu", 0): job(store, "experiment=relu", "trainer.seed=0"),
        ("relu", 1): job(store, "experiment=relu", "trainer.seed=1"),
        ("relu", 2): job(store, "experiment=relu", "trainer.seed=2"),
        ("l2", 0): job(store, "experiment=l2", "trainer.seed=0"),
    }
    identity = {k: provenance.identity(j.config()) for k, j in todo.items()}
    now = int(time.time() * 1000)
    finished = make_run(store, "reuse", "FINISHED", identity["relu", 0], now)
    make_run(store, "reuse", "FAILED", identity["relu", 1], now)
    make_run(store, "reuse", "KILLED", identity["relu", 2], now)
    old_code = {**identity["l2", 0], "code_version": "older"}  # trained by other core code
    make_run(store, "reuse", "FINISHED", old_code, now)

    run_ids, errors, reused = jobs.ensure(todo, workers=2)
    assert (reused, errors) == (1, {})
    assert run_ids[("relu", 0)] == finished
    assert set(trained[0]) == {("relu", 1), ("relu", 2), ("l2", 0)}
    assert {workers for _, workers in trained[0].values()} == {2}
    assert "1 of 4 runs reused, training 3" in caplog.text
    parents = {parent for parent, _ in trained[0].values()}
    client = MlflowClient(store)
    groups = {client.get_run(p).info.run_name: client.get_run(p) for p in parents}
    assert set(groups) == {"relu", "l2"}
    assert {g.info.status for g in groups.values()} == {"FINISHED"}
    assert groups["relu"].data.tags["kind"] == "group"
    assert groups["relu"].data.tags["config_hash"] == todo["relu", 1].config().training_hash(
        without=("trainer.seed",)
    )

    again, _, reused = jobs.ensure(todo, workers=1, force=True)  # report.force=true
    assert reused == 0 and set(trained[1]) == set(todo)
    assert again[("relu", 0)] == "trained relu 0"
    assert {p for p, _ in trained[1].values()} == parents  # the same group runs, joined


def test_everything_reused_trains_nothing(store: str, trained) -> None:
    todo = {("relu", 0): job(store, "experiment=relu")}
    run = make_run(store, "reuse", "FINISHED", provenance.identity(todo["relu", 0].config()), 1)
    assert jobs.ensure(todo, workers=2) == ({("relu", 0): run}, {}, 1)
    assert trained == []


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "KILLED"), (OSError, "FAILED")])
def test_group_runs_end_with_the_pool(store: str, monkeypatch, error, status: str) -> None:
    def pool(todo, configs, workers, parents, force):
        raise error

    monkeypatch.setattr(jobs, "_pool", pool)
    parent = make_run(store, "reuse", "RUNNING", {"kind": "report"}, 1)
    with pytest.raises(error):
        jobs.ensure({("relu", 0): job(store, "experiment=relu")}, workers=1, parent=parent)
    client = MlflowClient(store)
    (group,) = [
        r
        for r in client.search_runs([store_experiment(store)])
        if r.data.tags.get("kind") == "group"
    ]
    assert group.info.status == status and group.data.tags["mlflow.parentRunId"] == parent


def test_two_commands_wanting_the_same_run_train_it_once(store: str) -> None:
    # two reports at once: each pool worker claims the run before training it
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    overrides = job(store, "experiment=softmax", "trainer.epochs=2", "data.max_test=100").overrides
    parent = make_run(store, "reuse", "RUNNING", {"kind": "group"}, 1)
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(jobs._train, overrides, {"kind": "report-run"}, 1, parent, False)
            for _ in range(2)
        ]
        ids = {f.result() for f in futures}
    trained = MlflowClient(store).search_runs([store_experiment(store)], "tags.kind = 'report-run'")
    assert len(ids) == 1 and [r.info.run_id for r in trained] == list(ids)


def store_experiment(uri: str) -> str:
    return store.open_experiment(uri, "reuse")[1]


def report_context(
    uri: str,
    runs: list[str],
    errors: dict | None = None,
    searches: tuple[str | None, ...] = ("study-of-l2",),
    tuning: str | None = None,
    joint: str | None = None,
    **r: object,
) -> SimpleNamespace:
    """What ``record`` reads of a report's context: its runs (under one group run), the parent
    runs of its searches, its tuning and its joint test, its settings. Parent ids name runs
    made once."""
    from pipeline.train import config

    plan = SimpleNamespace(
        first=config([f"tracking.uri={uri}", "tracking.experiment=reuse"]),
        base=["data.max_train=100", f"tracking.uri={uri}"],
        r=ReportSchema(presets=["relu"], **r),
    )
    return SimpleNamespace(
        plan=plan,
        runs=pd.DataFrame({"run_id": runs, "parent": [parent_run(uri, "group")] * len(runs)}),
        findings=[SimpleNamespace(parent_run_id=s and parent_run(uri, s)) for s in searches],
        tuning=tuning and SimpleNamespace(parent_run_id=parent_run(uri, tuning)),
        joint=joint and SimpleNamespace(parent_run_id=parent_run(uri, joint)),
        errors=errors or {},
    )


def parent_run(uri: str, name: str) -> str:
    """The run named ``name`` in the experiment, made on first use."""
    client, experiment = store.open_experiment(uri, "reuse")
    found = client.search_runs([experiment], f"attributes.run_name = '{name}'")
    if found:
        return found[0].info.run_id
    return client.create_run(experiment, run_name=name).info.run_id


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A report's files (apart from the store, which lives in the test's folder)."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("# the report")
    return out


def test_an_unchanged_report_is_found_not_recorded_again(store: str, folder: Path, caplog) -> None:
    caplog.set_level("INFO", logger="sweeps.report.__main__")
    ctx = report_context(store, ["run-b", "run-a"], searches=("study-of-l2", None), tuning="tune")
    first = report.record(ctx, folder)
    client = MlflowClient(store)
    run = client.get_run(first)
    assert run.info.status == "FINISHED" and run.info.run_name == "report"
    assert run.data.tags["kind"] == "report"
    assert len(run.data.tags["report.identity"]) == 16
    assert run.data.tags["report.overrides"] == " ".join(ctx.plan.base)
    assert [a.path for a in client.list_artifacts(first)] == ["report.md"]
    for child in (ctx.runs["parent"][0], ctx.findings[0].parent_run_id, ctx.tuning.parent_run_id):
        assert client.get_run(child).data.tags["mlflow.parentRunId"] == first
    same = SimpleNamespace(**{**ctx.__dict__, "runs": ctx.runs.iloc[::-1]})  # order aside
    assert report.record(same, folder) == first
    assert f"the report is unchanged since MLflow run {first}: no new run" in caplog.text


def test_a_report_of_other_runs_code_or_settings_is_a_new_run(
    store: str, folder: Path, monkeypatch
) -> None:
    def recorded(*runs: str, **options: object) -> str:
        return report.record(report_context(store, list(runs), **options), folder)

    first = recorded("run-a", tuning="tune")
    assert recorded("run-a", tuning="tune") == first
    others = [
        recorded("run-b", tuning="tune"),  # other experiment runs
        recorded("run-a", tuning="tune", searches=("study-of-l1",)),  # another search
        recorded("run-a", tuning="tune-again"),  # another tuning study
        recorded("run-a", tuning="tune", joint="joint"),  # a joint test
        recorded("run-a"),  # no tuning
        recorded("run-a", tuning="tune", force=True),  # other report settings
    ]
    monkeypatch.setattr(report, "report_code", lambda: "other sources")
    others.append(recorded("run-a", tuning="tune"))  # other report code
    assert len({first, *others}) == 8


def test_a_report_with_failed_runs_ends_failed_and_is_never_reused(
    store: str, folder: Path
) -> None:
    ctx = report_context(store, ["run-a"], {("relu", 0): "Diverged"})
    failed = report.record(ctx, folder)
    assert MlflowClient(store).get_run(failed).info.status == "FAILED"
    assert report.record(ctx, folder) != failed


def test_the_report_code_is_every_sweep_source() -> None:
    import hashlib

    from pipeline.config import ROOT

    digest = hashlib.sha256()
    for path in sorted((ROOT / "sweeps").rglob("*.py")):
        digest.update(path.read_bytes())
    assert report.report_code() == digest.hexdigest()[:16]
    assert "report/__main__.py" in {
        p.relative_to(ROOT / "sweeps").as_posix() for p in (ROOT / "sweeps").rglob("*.py")
    }


def test_a_study_parent_links_the_trials_whose_run_another_study_made(store: str) -> None:
    # the audit: a second study's parent showed 8 of its 18 trials (the rest reused runs that
    # hang under the first study's parent)
    import optuna
    from optuna.trial import create_trial

    from pipeline.tracking.parents import ParentRun
    from sweeps import record
    from sweeps.settings import Part

    study = optuna.create_study()
    for run_id, reused in (("aaa", True), ("bbb", False), ("ccc", True)):
        attrs = {"mlflow_run_id": run_id, **({"reused": True} if reused else {})}
        study.add_trial(create_trial(value=0.5, user_attrs=attrs))
    parent = ParentRun(store, "reuse", "study", {}, export=False)
    experiment = parent.client.get_run(parent.run_id).info.experiment_id
    line = record.reused_line(parent, [(Part("s:model.activation=relu", {"a": "relu"}), study)])
    parent.end()
    assert line == (
        "2 trials reuse the run of the same computation made under another parent: "
        f"[relu #0](#/experiments/{experiment}/runs/aaa), "
        f"[relu #2](#/experiments/{experiment}/runs/ccc)"
    )
    assert record.reused_line(parent, [(Part("s", {}), optuna.create_study())]) == ""
