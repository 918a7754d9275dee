"""The MLflow UI in a real browser: a recorded run's page shows its name, metrics and figure."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import train
from pipeline.config import ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-artifacts"  # git-ignored; CI keeps them for a look
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="apt-get install chromium (.ci/run installs it)"
)


def test_run_page_shows_name_metric_and_figure(make_config, store: str, mlflow_server) -> None:
    from playwright.sync_api import sync_playwright

    cfg = make_config(
        "experiment=sigmoid",
        "trainer.epochs=2",
        "data.max_train=2000",
        "data.max_test=500",
        "trainer.progress=false",
        f"tracking.uri={store}",
    )
    result = train.run(cfg)
    from mlflow import MlflowClient

    run = MlflowClient(store).get_run(result.run_id)
    experiment_id, name = run.info.experiment_id, run.info.run_name
    page_url = f"{mlflow_server.url}/#/experiments/{experiment_id}/runs/{result.run_id}"
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(page_url)
        page.get_by_text(name).first.wait_for(timeout=60_000)
        page.get_by_text("test_accuracy", exact=True).first.wait_for(timeout=30_000)
        assert str(result.test_accuracy) in page.inner_text("body")
        page.screenshot(path=SCREENSHOTS / "mlflow-run-overview.png", full_page=True)
        page.goto(f"{page_url}/artifacts/curves.png")
        figure = page.locator("img[alt='curves.png']").first  # loaded as a blob
        figure.wait_for(timeout=60_000)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 500",
            arg=figure.element_handle(),
            timeout=30_000,
        )
        page.screenshot(path=SCREENSHOTS / "mlflow-run-curves.png", full_page=True)
        browser.close()
