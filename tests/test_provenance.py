"""What identifies a computation (config hash, data digest, the core's code version) and where
a run came from (git, package versions): the keys that decide whether a run is reused."""

from __future__ import annotations

import hashlib
import platform
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from pipeline.config import ROOT, TrainConfig
from pipeline.tracking import provenance

CORE = ["config", "data", "fit", "layers", "network", "optim"]


def test_the_core_is_fit_and_every_pipeline_module_it_imports() -> None:
    assert provenance.core_modules() == CORE
    assert provenance.core_modules("gradcheck") == sorted(
        {"cli", "config", "gradcheck", "layers", "network", "optim"}
        | set(provenance.core_modules("cli"))
    )
    assert "tracking.store" in provenance.core_modules("tracking.runs")
    assert provenance.core_modules("tracking.runs")[0] == "config"


def test_sources_of_modules_and_packages() -> None:
    assert provenance._source("fit") == ROOT / "pipeline" / "fit.py"
    assert provenance._source("tracking.store") == ROOT / "pipeline" / "tracking" / "store.py"
    assert provenance._source("tracking") == ROOT / "pipeline" / "tracking" / "__init__.py"


@pytest.fixture
def copy_of_the_pipeline(tmp_path: Path, monkeypatch) -> Path:
    """The pipeline's sources in a folder of their own, taken as the repository."""
    shutil.copytree(
        ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("*.pyc")
    )
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    return tmp_path / "pipeline"


def version(entry: str = "fit") -> str:
    return provenance.code_version.__wrapped__(entry)  # not the per-process cache


def test_code_version_is_the_hash_of_every_core_source(copy_of_the_pipeline: Path) -> None:
    digest = hashlib.sha256()
    for module in CORE:
        digest.update((copy_of_the_pipeline / f"{module}.py").read_bytes())
    assert version() == digest.hexdigest()[:16] == provenance.code_version()


@pytest.mark.parametrize("module", CORE)
def test_changing_any_core_module_changes_the_code_version(
    copy_of_the_pipeline: Path, module: str
) -> None:
    before = version()
    with open(copy_of_the_pipeline / f"{module}.py", "a") as f:
        f.write("\n# a change\n")
    assert version() != before


def test_changing_an_outer_module_keeps_the_code_version(copy_of_the_pipeline: Path) -> None:
    before = version()
    for outer in ("train.py", "tracking/runs.py", "plots.py"):
        with open(copy_of_the_pipeline / outer, "a") as f:
            f.write("\n# a change\n")
    assert version() == before


def test_a_new_core_module_joins_the_version_without_being_listed(
    copy_of_the_pipeline: Path,
) -> None:
    before = version()
    (copy_of_the_pipeline / "schedule.py").write_text("RATE = 1\n")
    fit = copy_of_the_pipeline / "fit.py"
    fit.write_text(
        fit.read_text().replace(
            "import numpy as np\n", "import numpy as np\n\nfrom pipeline.schedule import RATE\n", 1
        )
    )
    assert "schedule" in provenance.core_modules()
    changed = version()
    (copy_of_the_pipeline / "schedule.py").write_text("RATE = 2\n")
    assert len({before, changed, version()}) == 3


def test_identity_is_config_hash_data_digest_and_code_version() -> None:
    from pipeline.data import digest

    cfg = TrainConfig()
    cfg.data.sha256 = {
        "train_images": "a",
        "train_labels": "b",
        "test_images": None,
        "test_labels": "d",
    }
    assert provenance.identity(cfg) == {
        "config_hash": cfg.training_hash(),
        "data.digest": digest(cfg.data),
        "code_version": provenance.code_version(),
    }


def test_provenance_names_the_commit_and_the_versions() -> None:
    tags = provenance.provenance()
    assert tags["git.commit"] == provenance._git("rev-parse", "HEAD")
    assert len(tags["git.commit"]) == 40 and tags["git.dirty"] in ("true", "false")
    assert tags["code_version"] == provenance.code_version()
    assert tags["python"] == platform.python_version()
    for package in ("numpy", "mlflow", "hydra-core", "optuna"):
        assert tags[f"version.{package}"] == metadata.version(package)
    source = provenance.source_tags("pipeline.train")
    assert source["mlflow.source.type"] == "LOCAL"
    assert source["mlflow.source.name"] == "pipeline.train"
    assert source["mlflow.source.git.commit"] == tags["git.commit"]
    remote = provenance._git("config", "--get", "remote.origin.url")
    assert source.get("mlflow.source.git.repoURL", "") == remote


def test_git_outside_a_repository_or_without_git_is_empty(
    copy_of_the_pipeline: Path, monkeypatch
) -> None:
    assert provenance._git("rev-parse", "HEAD") == ""
    assert "mlflow.source.git.repoURL" not in provenance.source_tags("x")  # no remote here

    def no_git(*args: object, **kwargs: object) -> None:
        raise OSError("git: not found")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert provenance._git("rev-parse", "HEAD") == ""
