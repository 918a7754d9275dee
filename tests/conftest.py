"""Shared fixtures: Hydra-composed configs and the MNIST data, loaded once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from pipeline.config import ROOT, TrainConfig, to_config
from pipeline.data import Dataset
from pipeline.train import load_data

CONF = str(ROOT / "conf")


def compose_config(*overrides: str, name: str = "config") -> object:
    with initialize_config_dir(config_dir=CONF, version_base=None):
        return compose(config_name=name, overrides=list(overrides))


@pytest.fixture
def make_config() -> Callable[..., TrainConfig]:
    """Compose the Hydra config with overrides and validate it, as the CLI does."""
    return lambda *overrides: to_config(compose_config(*overrides))


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh MLflow SQLite store in a temporary folder."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


@pytest.fixture(scope="session")
def small_mnist() -> Dataset:
    """4,000 training images (3,200 train, 800 validation) and 1,000 test images."""
    cfg = to_config(compose_config("data.max_train=4000", "data.max_test=1000"))
    return load_data(cfg)
