"""What identifies a computation (config hash, data digest, the core's code version) and where
a run came from (git, package versions): the keys that decide whether a run is reused."""

from __future__ import annotations

import hashlib
import platform
import shutil
import sys
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


def test_the_entry_point_is_the_command_this_process_runs(monkeypatch) -> None:
    import sys
    from types import ModuleType, SimpleNamespace

    main = ModuleType("__main__")
    main.__spec__ = SimpleNamespace(name="sweeps.report.__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert provenance.entry_point() == "python -m sweeps.report"
    main.__spec__ = SimpleNamespace(name="pipeline.train")
    assert provenance.entry_point() == "python -m pipeline.train"
    main.__spec__ = None  # a script
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/train-mnist", "x=1"])
    assert provenance.entry_point() == "train-mnist"
    monkeypatch.setattr(sys, "argv", [""])
    assert provenance.entry_point() == "python"
    # a spawned pool worker: no spec, but its command's file as argv[0]
    monkeypatch.setattr(sys, "argv", [str(ROOT / "sweeps" / "report" / "__main__.py")])
    assert provenance.entry_point() == "python -m sweeps.report"
    monkeypatch.setattr(sys, "argv", [str(ROOT / "pipeline" / "train.py")])
    assert provenance.entry_point() == "python -m pipeline.train"
    monkeypatch.setattr(sys, "argv", ["/elsewhere/script.py"])
    assert provenance.entry_point() == "script.py"


def test_a_failing_git_command_gives_nothing_even_if_it_printed() -> None:
    # rev-parse prints HEAD's commit, then fails on the unknown name
    assert provenance._git("rev-parse", "HEAD", "no-such-ref-in-this-repository") == ""


def test_source_tags_name_the_remote_and_the_commit(monkeypatch) -> None:
    answers = {
        ("config", "--get", "remote.origin.url"): "https://example.org/mnist.git",
        ("rev-parse", "HEAD"): "c0ffee",
    }
    monkeypatch.setattr(provenance, "_git", lambda *args: answers.get(args, ""))
    assert provenance.source_tags("python -m pipeline.train") == {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": "python -m pipeline.train",
        "mlflow.source.git.commit": "c0ffee",
        "mlflow.source.git.repoURL": "https://example.org/mnist.git",
    }
    assert provenance.source_tags("x", "given")["mlflow.source.git.commit"] == "given"
    answers.clear()
    assert provenance.source_tags("x") == {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": "x",
        "mlflow.source.git.commit": "unknown",
    }


def test_the_entry_point_of_a_spawned_worker_is_its_command(monkeypatch) -> None:
    """A spawned pool worker has no ``__main__`` spec; its argv[0] names the command."""
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    monkeypatch.setattr(sys, "argv", [str(ROOT / "sweeps" / "report" / "__main__.py")])
    assert provenance.entry_point() == "python -m sweeps.report"
    monkeypatch.setattr(sys, "argv", [str(ROOT / "pipeline" / "train.py")])
    assert provenance.entry_point() == "python -m pipeline.train"
