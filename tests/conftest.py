"""Shared fixtures: Hydra-composed configs and the MNIST data, loaded once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import TrainConfig, to_config
from pipeline.data import Dataset
from pipeline.train import compose, load_data


def compose_config(*overrides: str) -> object:
    return compose(overrides)


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
