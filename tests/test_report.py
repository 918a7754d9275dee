"""reproduce-report end to end on a small subset: files, tables, and reuse on a second run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline.config import ROOT
from tests.conftest import new_store

SECTIONS = [
    "2 Softmax regression",
    "4 Momentum (tanh)",
    "5.1 L2, lambda 0.01",
    "5.2 L1, lambda 0.01",
    "6.1 Sigmoid",
    "6.2 ReLU",
]


@pytest.fixture(autouse=True)
def _migrated(tmp_path: Path, migrated_store: Path) -> None:
    new_store(tmp_path / "store", migrated_store)  # a store without the 4 s of migrations


def report(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m sweeps.report`` on 2,000 images and 3 epochs, into a store under ``tmp``."""
    cmd = [
        sys.executable,
        "-m",
        "sweeps.report",
        "data.max_train=2000",
        "data.max_test=500",
        "trainer.epochs=3",
        "report.workers=2",
        f"report.out={tmp}/reports",
        f"tracking.uri=sqlite:///{tmp}/store/mlflow.db",
        f"hydra.run.dir={tmp}/hydra",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def report_ok(tmp: Path) -> subprocess.CompletedProcess:
    out = report(tmp, "report.seeds=2", "report.sweep_trials=3")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def training_runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/store/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return [r for r in runs if r.data.tags.get("kind") in ("report-run", "trial")]


def test_report_end_to_end_then_reuse(tmp_path: Path) -> None:
    first = report_ok(tmp_path)
    assert "0 of 12 runs reused, training 12" in first.stdout
    folder = tmp_path / "reports"
    md = (folder / "report.md").read_text()
    for section in SECTIONS:
        assert section in md
    assert "Table 1" in md and "Does L1 give sparser weights than L2?" in md
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 8 and "<table" in html
    table = pd.read_csv(folder / "comparison.csv")
    assert list(table["experiment"]) == SECTIONS
    assert table["verdict"].isin(["within the seed spread", "better", "worse"]).all()
    runs = pd.read_csv(folder / "runs.csv")
    assert len(runs) == 12 and set(runs["seed"]) == {0, 1}
    assert (folder / "figures" / "curves_relu.png").stat().st_size > 10_000
    assert len(pd.read_csv(folder / "sweep_trials.csv")) == 3
    before = {r.info.run_id for r in training_runs(tmp_path)}
    assert len(before) == 12 + 3

    second = report_ok(tmp_path)
    assert "12 of 12 runs reused, training 0" in second.stdout
    assert "3 done of 3 trials" in second.stdout and "[worker" not in second.stdout
    assert {r.info.run_id for r in training_runs(tmp_path)} == before
    assert pd.read_csv(folder / "comparison.csv").equals(table)


def test_a_failed_run_still_writes_the_report_and_exits_nonzero(tmp_path: Path) -> None:
    # lr 1e4 makes the ReLU network diverge; softmax regression stays finite (log-sum-exp)
    out = report(
        tmp_path,
        "report.seeds=1",
        "report.sweep_trials=0",
        "report.presets=[relu,softmax]",
        "optimizer.lr=1e4",
    )
    assert out.returncode == 1
    assert "relu seed 0: Diverged: loss is no longer finite" in out.stderr
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "## Failed runs" in md and "2 Softmax regression" in md
    client = MlflowClient(f"sqlite:///{tmp_path}/store/mlflow.db")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    status = {r.data.tags.get("preset", r.info.run_name): r.info.status for r in runs}
    assert status["relu"] == "FAILED" and status["softmax"] == "FINISHED"
    assert status["report"] == "FAILED"
