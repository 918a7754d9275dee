"""The command lines, run as a user runs them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys

from pipeline.config import ROOT

SMALL = ["data.max_train=2000", "data.max_test=500", "trainer.epochs=2", "tracking=none"]


def run(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_train_prints_epochs_and_test_metrics(tmp_path) -> None:
    out = run("pipeline.train", "experiment=relu", *SMALL, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert "epoch   2" in out.stdout and "test accuracy" in out.stdout


def test_invalid_config_is_one_line_error(tmp_path) -> None:
    out = run("pipeline.train", "optimizer.lr=-1", *SMALL, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: optimizer.lr=-1.0 is invalid: expected a finite number > 0"
    )


def test_multirun_runs_each_job(tmp_path) -> None:
    out = run(
        "pipeline.train", "-m", "experiment=sigmoid,relu", *SMALL, f"hydra.sweep.dir={tmp_path}"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("test accuracy") == 2


def test_gradcheck_cli_passes() -> None:
    out = run("pipeline.gradcheck", "tracking=none", "data.max_train=100", "data.max_test=10")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Output bias" in out.stdout and out.stdout.rstrip().endswith("PASS")
