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
from pipeline.tracking.ui import ensure_view, links
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


def test_the_links_of_make_ui_open_the_runs_and_the_grouped_charts(
    store: str, mlflow_server, page
) -> None:
    """The report's experiments as the report records them (two seeds each, under group
    runs); ``make ui``'s links must open the runs table in the model-training view with no
    click, and the saved view must show the six experiments side by side in charts."""
    todo = {
        (p, seed): jobs.Job(
            (*TINY, f"tracking.uri={store}", f"experiment={p}", f"trainer.seed={seed}"),
            {"kind": "report-run", "report.experiment": p},
        )
        for p in PRESETS
        for seed in (0, 1)
    }
    _, errors, _ = jobs.ensure(todo, 2)
    assert not errors
    client, experiment_id = stores.open_experiment(store, "mnist-mlp")
    trial = client.create_run(experiment_id, run_name="sweep-trial-7", tags={"kind": "trial"})
    client.set_terminated(trial.info.run_id)
    ensure_view(client, experiment_id)
    urls = links(mlflow_server.url, experiment_id)

    page.goto(urls["runs"])  # a fresh browser: no click on "Model training" needed
    for group in PRESETS:  # the group runs, each a readable row with its seeds below
        page.get_by_role("link", name=group, exact=True).first.wait_for(timeout=60_000)
    assert "sweep-trial-7" not in page.inner_text("body")  # trials are not in the way
    page.screenshot(path=SCREENSHOTS / "mlflow-runs.png", full_page=False)
    page.goto(urls["all runs"])
    page.get_by_role("link", name="sweep-trial-7", exact=True).first.wait_for(timeout=60_000)

    page.goto(urls["grouped charts"])
    page.get_by_text("Group by: report.experiment").first.wait_for(timeout=60_000)
    for group in PRESETS:  # each experiment is one group of its seeds ...
        page.get_by_text(f"Group: {group}", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text("test_accuracy").first.wait_for(timeout=60_000)  # ... side by side
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)  # a chart is drawn
    page.screenshot(path=SCREENSHOTS / "mlflow-grouped-charts.png", full_page=False)


def test_optuna_dashboard_shows_the_studies(tmp_path: Path, page) -> None:
    journal = tmp_path / "studies.journal"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeps",
            "sweep=lr_activation",
            "n_trials=2",
            "tracking=none",
            *TINY,
            f"study.storage=journal:{journal}",
            f"hydra.run.dir={tmp_path}/hydra",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
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
