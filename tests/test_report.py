"""reproduce-report end to end on a small subset, with the real libraries (Optuna 5 studies with
metric names, a real MLflow store): sections in order, tables, the MLflow tree, the independent
verifier (which must agree with every number, and name a planted one), and a second run that
reuses everything and adds no run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pipeline.config import ROOT
from tests.conftest import new_store

EXPERIMENTS = [
    "2 Softmax regression",
    "4 Momentum (tanh)",
    "5.1 L2, lambda 0.01",
    "5.2 L1, lambda 0.01",
    "6.1 Sigmoid",
    "6.2 ReLU",
]
SECTIONS = [
    "Summary",
    "The report's experiments over seeds",
    "Where we differ from the original, and why",
    "One implementation for every row",
    "Gradient check (report section 3, Table 1)",
    "Activations compared",
    "Does L1 give sparser weights than L2?",
    "What tuning gives",
    "Setup",
]
SMALL = [
    "data.max_train=2000",
    "data.max_test=500",
    "trainer.epochs=3",
    "report.workers=2",
    "report.tuning.trials=2",
    "report.tuning.min_complete=1",
    "report.forensics.rows=[l2]",
    "report.forensics.max_grid=1",  # a sample ...
    "report.forensics.trials=3",  # ... of three combinations
]


def report(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m sweeps.report`` on a subset, into a store under ``tmp``."""
    cmd = [
        sys.executable,
        "-m",
        "sweeps.report",
        f"report.out={tmp}/reports",
        f"tracking.uri=sqlite:///{tmp}/store/mlflow.db",
        f"hydra.run.dir={tmp}/hydra",
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)


def verify(md: Path, tmp: Path) -> subprocess.CompletedProcess:
    """``python -m verify`` (make verify-report) on a written report."""
    cmd = [sys.executable, "-m", "verify", str(md), f"--uri=sqlite:///{tmp}/store/mlflow.db"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def all_runs(tmp: Path) -> list:
    client = MlflowClient(f"sqlite:///{tmp}/store/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory, migrated_store: Path) -> tuple[Path, str]:
    """One report on a subset with two seeds, shared by this module's tests (they run in one
    xdist group) and made once (between two of them it would be torn down and made again):
    its folder and its console output."""
    tmp = tmp_path_factory.mktemp("report")
    new_store(tmp / "store", migrated_store)  # a store without the 4 s of migrations
    (tmp / "reports").mkdir()
    (tmp / "reports" / "thesis.tex").write_text("the user's")  # must outlive every report
    first = report(tmp, *SMALL, "report.seeds=2")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return tmp, first.stdout


pytestmark = pytest.mark.xdist_group("report")


def test_the_report_has_every_section_table_and_run(small: tuple[Path, str]) -> None:
    tmp_path, stdout = small
    assert "0 of 12 runs reused, training 12" in stdout
    folder = tmp_path / "reports"
    md = (folder / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == SECTIONS  # the summary first, the setup last
    for experiment in EXPERIMENTS:
        assert experiment in md
    assert "nan" not in md.lower()  # a missing number reads "-"
    summary = md.split("## ")[1]
    assert "Of the original's 6 experiments" in summary and "5.1 L2" in summary
    assert "inside the 95% prediction interval" in md  # the verdict rule, where it is used
    assert (
        "5.1 L2, lambda 0.01: 3 of its 60 combinations tried (a seeded random sample of 3 "
        "distinct ones)" in md
    )
    assert re.search(
        r"\[[0-9a-f]{8}\]\(http://127\.0\.0\.1:5000/#/experiments/\d+/runs/[0-9a-f]{32}\)", md
    )
    assert "- [One implementation for every row](#one-implementation-for-every-row)" in md
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 9 and "<table" in html
    assert '<td class="num">' in html and "<a href=" in html
    table = pd.read_csv(folder / "comparison.csv")
    assert list(table["experiment"]) == EXPERIMENTS
    ranking = pd.read_csv(folder / "forensics_l2.csv")
    assert "as it stands" in set(ranking["choices"]) and (ranking["seeds"] == 2).all()
    tuning = pd.read_csv(folder / "tuning.csv")
    assert set(tuning["experiment"]) == {"sigmoid", "momentum", "relu", "l1", "l2"}
    assert (tuning["complete"] >= 1).all()
    joint = pd.read_csv(folder / "joint.csv")
    assert list(joint["experiment"]) == EXPERIMENTS and (joint["seeds"] == 2).all()

    runs = all_runs(tmp_path)
    (report_run,) = [r for r in runs if r.data.tags.get("kind") == "report"]
    by_parent: dict[str, list] = {}
    for r in runs:
        by_parent.setdefault(r.data.tags.get("mlflow.parentRunId"), []).append(r)
    children = by_parent[report_run.info.run_id]
    groups = [r for r in children if r.data.tags.get("kind") == "group"]
    studies = [r for r in children if r.data.tags.get("kind") == "study"]
    assert sorted(g.info.run_name for g in groups) == sorted(
        ["softmax", "momentum", "l2", "l1", "sigmoid", "relu"]
    )
    assert all(len(by_parent[g.info.run_id]) == 2 for g in groups)  # the seeds
    assert len(studies) == 2  # the forensic search of l2, the tuning
    assert [r.data.tags.get("kind") for r in children].count("joint") == 1
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}  # KILLED: pruned trials
    killed = [r for r in runs if r.info.status == "KILLED"]
    assert all(r.data.tags.get("outcome") == "pruned" for r in killed)  # never a parent


def test_the_verifier_agrees_with_every_number_and_the_report_says_how_many(
    small: tuple[Path, str],
) -> None:
    tmp_path, stdout = small
    md = tmp_path / "reports" / "report.md"
    out = verify(md, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (line,) = out.stdout.strip().splitlines()
    count = int(re.fullmatch(r"verified (\d+) numbers, 0 disagree", line)[1])
    assert count > 300  # every table and sentence of six sections at least
    assert f"re-derived {count} numbers of this report" in md.read_text()
    assert line in stdout  # the report ran the same verification last


def test_a_planted_number_is_named_by_the_verifier(small: tuple[Path, str]) -> None:
    """One accuracy changed by 0.01 in the comparison table, one lr in the tuning text."""
    tmp_path, _ = small
    md = tmp_path / "reports" / "report.md"
    text = md.read_text()
    row = re.search(r"^\| 5\.1 L2, lambda 0\.01 +\| +[\d.]+ \| +([\d.]+) \|", text, flags=re.M)
    shown = row[1]
    planted = f"{float(shown) + 0.01:.2f}"
    changed = text[: row.start(1)] + planted + text[row.end(1) :]
    lr = re.search(r"6\.2 ReLU: best of \d+ complete of \d+ trials: lr ([\d.e-]+)", changed)
    changed = changed[: lr.start(1)] + "0.777" + changed[lr.end(1) :]
    bad = tmp_path / "planted.md"
    bad.write_text(changed)
    out = verify(bad, tmp_path)
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert re.fullmatch(r"verified \d+ numbers, 3 disagree", lines[0])  # and the count line
    assert any(
        "5.1 L2, lambda 0.01 ours acc % (mean)" in x and f"says '{planted}'" in x for x in lines
    )
    assert any("6.2 ReLU lr: the report says '0.777'" in x for x in lines)


def test_a_second_report_reuses_everything_and_adds_no_run(small: tuple[Path, str]) -> None:
    tmp_path, _ = small
    folder = tmp_path / "reports"
    table = pd.read_csv(folder / "comparison.csv")
    trained = {r.info.run_id for r in all_runs(tmp_path)}
    second = report(tmp_path, *SMALL, "report.seeds=2")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "12 of 12 runs reused, training 0" in second.stdout
    assert "[worker" not in second.stdout and "training 0" in second.stdout
    assert "the report is unchanged since MLflow run" in second.stdout
    assert {r.info.run_id for r in all_runs(tmp_path)} == trained  # not one new run
    assert pd.read_csv(folder / "comparison.csv").equals(table)
    assert (folder / "thesis.tex").read_text() == "the user's"
    assert "thesis.tex" not in (folder / ".report-files").read_text()


def test_a_failed_run_still_writes_the_report_and_exits_nonzero(
    tmp_path: Path, migrated_store: Path
) -> None:
    new_store(tmp_path / "store", migrated_store)
    # lr 1e4 makes the ReLU network diverge; softmax regression stays finite (log-sum-exp)
    out = report(
        tmp_path,
        "data.max_train=2000",
        "data.max_test=500",
        "trainer.epochs=3",
        "report.seeds=1",
        "report.tuning.sweep=null",
        "report.presets=[relu,softmax]",
        "optimizer.lr=1e4",
    )
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert "1 run(s) failed" in line and "relu seed 0: Diverged: loss is no longer finite" in line
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "## Failed runs" in md and "2 Softmax regression" in md
    status = {
        r.data.tags.get("preset", r.data.tags.get("kind")): r.info.status
        for r in all_runs(tmp_path)
        if r.data.tags.get("kind") in ("report-run", "report")
    }
    assert status == {"relu": "FAILED", "softmax": "FINISHED", "report": "FAILED"}
