"""Where a number came from: the core's code version, the git commit, package versions."""

from __future__ import annotations

import ast
import hashlib
import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from pipeline.config import ROOT, TrainConfig

CORE_ENTRY = "fit"  # the training loop; the core is it and every pipeline module it imports


def core_modules(entry: str = CORE_ENTRY) -> list[str]:
    """``fit`` and the ``pipeline`` modules it imports at module level, transitively, read from
    the sources: a module added to the core is part of its version without anyone listing it.
    (Imports inside functions are the optional outer layers, MLflow, not what computes.)"""
    found: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for node in ast.parse(_source(name).read_text()).body:
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "pipeline"
            ):
                continue
            package = node.module.removeprefix("pipeline").removeprefix(".")
            for alias in node.names:  # a submodule (from pipeline import fit) or a name in one
                sub = f"{package}.{alias.name}".lstrip(".")
                todo.append(sub if _source(sub).is_file() else package)
    return sorted(m for m in found if m)


def _source(module: str) -> Path:
    """``tracking.store`` -> ``<repo>/pipeline/tracking/store.py`` (a package: its __init__)."""
    path = ROOT / "pipeline" / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@cache
def code_version(entry: str = CORE_ENTRY) -> str:
    """Hash of the sources of ``entry`` and what it imports (by default the core's): what
    decides whether an old result can be reused."""
    digest = hashlib.sha256()
    for module in core_modules(entry):
        digest.update(_source(module).read_bytes())
    return digest.hexdigest()[:16]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@cache
def provenance() -> dict[str, str]:
    """Git commit and dirtiness, the versions of what the numbers depend on, and MLflow's own
    Source and Git fields (the command this process runs)."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    tags = {
        "git.commit": commit,
        "git.dirty": str(bool(_git("status", "--porcelain", "--untracked-files=no"))).lower(),
        "code_version": code_version(),
        "python": platform.python_version(),
    }
    for package in ("numpy", "mlflow", "hydra-core", "optuna"):
        tags[f"version.{package}"] = metadata.version(package)
    return tags | source_tags(entry_point(), commit)


def entry_point() -> str:
    """``python -m sweeps.report``: the command whose process (or pool worker) this is. A
    spawned pool worker has no ``__main__`` spec, but keeps its command's ``argv[0]``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:
        return f"python -m {spec.name.removesuffix('.__main__')}"
    path = Path(sys.argv[0]).resolve()
    if path.suffix == ".py" and path.is_relative_to(ROOT):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        return f"python -m {module.removesuffix('.__main__')}"
    return Path(sys.argv[0]).name or "python"


def source_tags(entry_point: str, commit: str | None = None) -> dict[str, str]:
    """The tags MLflow's UI shows as a run's Source and Git commit."""
    remote = _git("config", "--get", "remote.origin.url")
    tags = {
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": entry_point,
        "mlflow.source.git.commit": commit or _git("rev-parse", "HEAD") or "unknown",
    }
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
    return tags


def identity(cfg: TrainConfig) -> dict[str, str]:
    """What makes two runs the same computation: every training key, the data and the core's
    code. Runs carry these as tags, so a finished one is found instead of trained again."""
    from pipeline.data import digest

    return {
        "config_hash": cfg.training_hash(),
        "data.digest": digest(cfg.data),
        "code_version": code_version(),
    }
