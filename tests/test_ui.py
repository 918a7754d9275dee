"""The MLflow UI and optuna-dashboard in a real browser: what a user must see, with screenshots
kept in ``test-artifacts/``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline import serving, train
from pipeline.config import ROOT
from pipeline.tracking import store as stores
from pipeline.tracking.ui import ensure_views, links
from sweeps import jobs
from tests.conftest import free_port, wait_http

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts"  # git-ignored; CI keeps them for a look
PRESETS = ["softmax", "momentum", "l2", "l1", "sigmoid", "relu"]
TINY = ["data.max_train=1000", "data.max_test=200", "trainer.epochs=2", "trainer.progress=false"]
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="apt-get install chromium (.ci/run installs it)"
)


@pytest.fixture
def page() -> Iterator:
    """A page of a fresh headless Chromium profile (nothing remembered from earlier visits)."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser.new_page(viewport={"width": 1500, "height": 1000})
        browser.close()


def test_run_page_shows_name_metric_and_figure(make_config, store: str, mlflow_server, page):
    cfg = make_config("experiment=sigmoid", *TINY, f"tracking.uri={store}")
    result = train.run(cfg)
    run = MlflowClient(store).get_run(result.run_id)
    url = f"{mlflow_server.url}/#/experiments/{run.info.experiment_id}/runs/{result.run_id}"
    page.goto(url)
    page.get_by_text(run.info.run_name).first.wait_for(timeout=60_000)
    page.get_by_text("test_accuracy", exact=True).first.wait_for(timeout=30_000)
    assert str(result.test_accuracy) in page.inner_text("body")
    # its logged model, named after it (not "model", as every run's would be)
    page.get_by_text(serving.model_name(run.info.run_name)).first.wait_for(timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "mlflow-run-overview.png", full_page=True)
    page.goto(f"{url}/artifacts/curves.png")
    figure = page.locator("img[alt='curves.png']").first  # loaded as a blob
    figure.wait_for(timeout=60_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 500", arg=figure.element_handle(), timeout=30_000
    )
    page.screenshot(path=SCREENSHOTS / "mlflow-run-curves.png", full_page=True)


@pytest.fixture
def report_store(store: str) -> tuple[MlflowClient, str]:
    """A store shaped as a report leaves it: the six experiments (two seeds each, under their
    group runs) trained first, then a study with more trials than the table's first page
    (100 runs), then the report's run adopting the groups and the study."""
    todo = {
        (p, seed): jobs.Job(
            (*TINY, f"tracking.uri={store}", f"experiment={p}", f"trainer.seed={seed}"),
            {"kind": "report-run", "report.experiment": p},
        )
        for p in PRESETS
        for seed in (0, 1)
    }
    ids, errors, _ = jobs.ensure(todo, 2)
    assert not errors
    client, experiment_id = stores.open_experiment(store, "mnist-mlp")
    study = client.create_run(experiment_id, run_name="tune study", tags={"kind": "study"})
    for n in range(110):
        trial = client.create_run(
            experiment_id,
            run_name=f"sweep-trial-{n}",
            tags={"kind": "trial", "mlflow.parentRunId": study.info.run_id},
        )
        client.set_terminated(trial.info.run_id)
    client.set_terminated(study.info.run_id)
    report = client.create_run(experiment_id, run_name="report", tags={"kind": "report"})
    groups = {client.get_run(r).data.tags["mlflow.parentRunId"] for r in ids.values()}
    for child in [*groups, study.info.run_id]:
        client.set_tag(child, "mlflow.parentRunId", report.info.run_id)
    client.set_terminated(report.info.run_id)
    ensure_views(client, experiment_id)
    return client, experiment_id


def test_the_links_of_make_ui_open_on_the_report_s_experiments(
    report_store: tuple[MlflowClient, str], mlflow_server, page
) -> None:
    """``make ui``'s links, in a fresh browser and with no click: the six experiments as rows
    with the compared columns (mean over seeds), every run with the six on the first page,
    and the six side by side in charts (curves first, accuracy in percent, two seeds each:
    the group's parent run is no member)."""
    client, experiment_id = report_store
    urls = links(mlflow_server.url, experiment_id)

    page.goto(urls["runs"])  # no click on "Model training" needed
    for group in PRESETS:
        page.get_by_text(f"Group: {group}", exact=True).first.wait_for(timeout=60_000)
    body = page.inner_text("body")
    for column in ("test_accuracy", "test_loss", "stopped_epoch"):
        assert column in body
    assert "(average)" in body  # each experiment's row: the mean over its seeds
    for group in PRESETS:  # its two seeds, not its parent run too
        assert f"Group: {group}\n2\n" in body
    assert "sweep-trial-" not in body  # trials are not in the way
    page.screenshot(path=SCREENSHOTS / "mlflow-runs.png", full_page=False)

    page.goto(urls["all runs"])  # 110 trials came later: the six groups are still on page one
    for group in PRESETS:
        page.get_by_text(f"Group: {group}", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text("Additional runs").first.wait_for(timeout=30_000)  # the rest, open
    page.get_by_role("link", name="sweep-trial-0", exact=True).first.wait_for(timeout=30_000)
    page.screenshot(path=SCREENSHOTS / "mlflow-all-runs.png", full_page=False)

    page.goto(urls["grouped charts"])
    page.get_by_text("Group by: preset").first.wait_for(timeout=60_000)
    for group in PRESETS:
        page.get_by_text(f"Group: {group}", exact=True).first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # a chart is drawn
    body = page.inner_text("body")
    for group in PRESETS:
        assert f"Group: {group}\n2\n" in body
    first_bar = body.index("test_accuracy_pct")  # the curves come first, best_* bars later
    assert "val_loss" in body[:first_bar] and "best_epoch" not in body[:first_bar]
    runs = client.search_runs([experiment_id], "tags.kind = 'report-run'")
    means = {}  # each experiment's bar: its mean accuracy in percent, as the bar writes it
    for run in runs:
        means.setdefault(run.data.tags["preset"], []).append(run.data.metrics["test_accuracy"])
    for accuracies in means.values():
        assert f"{100 * sum(accuracies) / len(accuracies):.2f}" in body
    page.screenshot(path=SCREENSHOTS / "mlflow-grouped-charts.png", full_page=False)


def two_trial_sweep(tmp_path: Path, *args: str) -> Path:
    """A real two-trial sweep into a journal under ``tmp_path``; returns the journal."""
    journal = tmp_path / "studies.journal"
    cmd = [sys.executable, "-m", "sweeps", "sweep=lr_activation", "n_trials=2", *TINY, *args]
    cmd += [f"study.storage=journal:{journal}", f"hydra.run.dir={tmp_path}/hydra"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return journal


def test_a_study_s_run_links_its_best_trial(tmp_path: Path, store: str, mlflow_server, page):
    """The study's parent run names its best trial in its description, a link that opens the
    trial's run page."""
    two_trial_sweep(tmp_path, f"tracking.uri={store}")
    client, experiment_id = stores.open_experiment(store, "mnist-mlp")
    (study,) = client.search_runs([experiment_id], "tags.kind = 'study'")
    best = client.get_run(study.data.tags["best.run_id"])
    page.goto(f"{mlflow_server.url}/#/experiments/{experiment_id}/runs/{study.info.run_id}")
    # the description's link, not the child-runs box's (which lists every trial)
    link = page.locator("p", has_text="Best trial:").get_by_role("link").first
    link.wait_for(timeout=60_000)
    assert link.inner_text().startswith(study.data.tags["best.trial"].split()[-1])  # "#1 ..."
    page.screenshot(path=SCREENSHOTS / "mlflow-study.png", full_page=False)
    with page.context.expect_page() as opened:  # MLflow opens a description's links in a tab
        link.click()
    trial = opened.value
    trial.wait_for_function("id => location.hash.includes(id)", arg=best.info.run_id)
    trial.get_by_text(best.info.run_name).first.wait_for(timeout=60_000)
    trial.get_by_text("val_loss", exact=True).first.wait_for(timeout=30_000)


def test_optuna_dashboard_shows_the_studies(tmp_path: Path, page) -> None:
    journal = two_trial_sweep(tmp_path, "tracking=none")
    port = free_port()
    log = tmp_path / "dashboard.log"
    with open(log, "w") as stream:
        proc = subprocess.Popen(
            [  # what make dashboard runs: loopback names only
                sys.executable,
                "-m",
                "sweeps.dashboard",
                f"--port={port}",
                f"--storage=journal:{journal}",
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/studies", proc, log)
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        for activation in ("sigmoid", "tanh", "relu"):  # one study per activation
            page.get_by_text(f":model.activation={activation}").first.wait_for(timeout=60_000)
        page.screenshot(path=SCREENSHOTS / "optuna-dashboard-studies.png", full_page=False)
        page.get_by_text(":model.activation=relu").first.click()
        page.get_by_text("val_loss").first.wait_for(timeout=60_000)  # the objective, named
        page.screenshot(path=SCREENSHOTS / "optuna-dashboard-study.png", full_page=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
