"""Workers through submitit: a sweep and a report end to end with its local executor (jobs on
this machine, as on a cluster), and the SLURM path as far as it goes without SLURM: composed
from ``conf/launcher/`` and its submission file rendered by submitit, checked line by line
(``sbatch`` and ``srun`` are stand-ins that keep what they were given)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from pipeline.config import ROOT, ConfigError
from pipeline.train import compose
from sweeps import launchers, storage
from tests.conftest import new_store
from tests.test_faults import command, runs, study_of, sweep_args


@pytest.fixture(autouse=True)
def _local_again():
    yield
    launchers.configure({})  # the process's launcher back to the default


def test_a_sweep_through_submitit_local_fills_one_study_from_two_jobs(
    tmp_path: Path, migrated_store: Path
) -> None:
    new_store(tmp_path / "store", migrated_store)
    args = sweep_args(tmp_path, "n_trials=4", "trainer.epochs=3", "workers=2")
    args += ["launcher=submitit_local", f"launcher.folder={tmp_path}/jobs"]
    cmd = command("sweeps", tmp_path, *args)
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert (
        "2 submitit_local jobs (" in out.stdout and f"their logs in {tmp_path}/jobs" in out.stdout
    )
    trials = study_of(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    pids = {t.user_attrs[storage.OWNER_ATTR].rsplit(":", 2)[1] for t in trials}
    assert len(pids) == 2  # each job took trials from the one budget
    logs = sorted(p.name for p in (tmp_path / "jobs").glob("*_log.out"))
    name = study_of(tmp_path).study_name  # lr_activation-mnist-<settings hash>
    assert len(logs) == 2 and all(f"{name} #" in (tmp_path / "jobs" / p).read_text() for p in logs)
    statuses = {(r.data.tags["kind"], r.info.status) for r in runs(tmp_path)}
    assert statuses == {("study", "FINISHED"), ("trial", "FINISHED")}


@pytest.mark.slow
def test_a_report_through_submitit_local_trains_in_jobs(
    tmp_path: Path, migrated_store: Path
) -> None:
    new_store(tmp_path / "store", migrated_store)
    cmd = [
        sys.executable,
        "-m",
        "sweeps.report",
        f"report.out={tmp_path}/reports",
        f"tracking.uri=sqlite:///{tmp_path}/store/mlflow.db",
        f"hydra.run.dir={tmp_path}/hydra",
        "launcher=submitit_local",
        f"launcher.folder={tmp_path}/jobs",
        *("data.max_train=2000", "data.max_test=500", "trainer.epochs=3", "report.seeds=2"),
        *("report.presets=[softmax,relu]", "report.forensics.rows=[]", "report.workers=2"),
        *("report.tuning.trials=2", "report.tuning.min_complete=1"),
    ]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "reports" / "report.md").is_file()
    assert "2 submitit_local jobs (" in out.stdout  # the tuning study's workers
    results = list((tmp_path / "jobs").glob("*_result.pkl"))
    trained = [r for r in runs(tmp_path) if r.data.tags.get("kind") in ("report-run", "trial")]
    assert len(results) >= 2 + 2 and trained  # the seeds' runs, each a job, and the study's
    assert {r.info.status for r in runs(tmp_path)} == {"FINISHED"}


def slurm_launcher(tmp_path: Path, *overrides: str) -> launchers.Launcher:
    raw = compose(
        ["launcher=submitit_slurm", f"launcher.folder={tmp_path}/jobs", *overrides],
        config_name="sweeps",
    )
    return launchers.configure(raw.launcher)


def test_the_slurm_launcher_is_composed_from_its_config_group(tmp_path: Path) -> None:
    launcher = slurm_launcher(tmp_path, "launcher.partition=cpu", "launcher.mem_gb=8")
    assert launchers.current() is launcher
    assert (launcher.name, launcher.partition, launcher.mem_gb) == ("submitit_slurm", "cpu", 8)
    assert (launcher.time, launcher.cpus_per_task, launcher.array_parallelism) == (60, 1, 16)
    assert launcher.threads == 1  # a job's BLAS threads are its cores
    with pytest.raises(ConfigError, match=r"launcher.name='slurm' is invalid: expected one of"):
        launchers.configure(OmegaConf.create({"name": "slurm"}))
    with pytest.raises(ConfigError, match=r"launcher.time=0 is invalid: expected minutes >= 1"):
        launchers.configure(OmegaConf.create({"name": "submitit_local", "time": 0}))


def test_a_sweep_on_slurm_is_one_job_array_of_its_workers(tmp_path: Path, monkeypatch) -> None:
    bin_dir, kept = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {kept}\necho "Submitted batch job 4242"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    launcher = slurm_launcher(
        tmp_path,
        "launcher.partition=cpu",
        "launcher.time=90",
        "launcher.cpus_per_task=2",
        "launcher.mem_gb=6",
        "launcher.array_parallelism=3",
        "launcher.setup=[source .venv/bin/activate]",
    )
    jobs = launchers.submit_all(launcher, print, [("a",), ("b",), ("c",), ("d",)])
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(4)]
    script = kept.read_text().splitlines()
    for line in (
        "#SBATCH --partition=cpu",
        "#SBATCH --time=90",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=6GB",
        "#SBATCH --array=0-3%3",  # four workers, three at a time
        "#SBATCH --job-name=mnist-pipeline",
        f"#SBATCH --output={tmp_path}/jobs/%A_%a_0_log.out",
        "source .venv/bin/activate",
    ):
        assert line in script, "\n".join(script)
    command_line = script[-1] if script[-1] else script[-2]
    assert command_line.startswith("srun --unbuffered --output")
    assert f"-u -m submitit.core._submit {tmp_path}/jobs" in command_line
    assert command_line.split(" -u -m ")[0].endswith(sys.executable)  # this interpreter
    assert len(list((tmp_path / "jobs").glob("4242_*_submitted.pkl"))) == 4
