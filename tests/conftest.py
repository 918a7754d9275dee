"""Shared fixtures: Hydra-composed configs and the MNIST data, loaded once per session."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.config import TrainConfig, to_config
from pipeline.data import Dataset
from pipeline.train import compose, load_data
from tests import templates


def compose_config(*overrides: str) -> object:
    return compose(overrides)


@pytest.fixture
def make_config() -> Callable[..., TrainConfig]:
    """Compose the Hydra config with overrides and validate it, as the CLI does."""
    return lambda *overrides: to_config(compose_config(*overrides))


@pytest.fixture(scope="session")
def migrated_store() -> Path:
    """An empty MLflow SQLite database with its schema, made once: a new store's first
    connect runs every migration (about 4 s), which most tests need not pay again."""
    return templates.migrated_store()


def new_store(folder: Path, template: Path) -> str:
    """A store in ``folder`` (``mlflow.db`` and its artifacts), copied from the template."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture
def store(tmp_path: Path, migrated_store: Path) -> str:
    """A fresh MLflow SQLite store in a temporary folder."""
    return new_store(tmp_path / "mlruns", migrated_store)


@pytest.fixture(scope="session")
def small_mnist() -> Dataset:
    """4,000 training images (3,200 train, 800 validation) and 1,000 test images."""
    cfg = to_config(compose_config("data.max_train=4000", "data.max_test=1000"))
    return load_data(cfg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Until ``url`` answers (a server's health page), or its process ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{url} did not answer in {timeout:.0f} s"
            time.sleep(0.2)


class MlflowServer:
    """``mlflow server`` on a loopback port over a store, as light as it goes (one worker, no
    GenAI job runner); it can be stopped and started again on the same port (an outage)."""

    def __init__(self, store: str, folder: Path) -> None:
        self.store, self.folder, self.port = store, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        log = self.folder / "server.log"
        with open(log, "a") as stderr:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("mlflow")),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    self.store,
                    "--artifacts-destination",
                    str(self.folder / "served"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                start_new_session=True,  # its workers are stopped with it
            )
        wait_http(f"{self.url}/health", self.proc, log)
        return self.url

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


@pytest.fixture
def mlflow_server(store: str, tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(store, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port (Debian's postgresql package)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or not shutil.which("runuser"):
        pytest.skip("apt-get install postgresql (.ci/run installs it)")
    bindir = Path(bins[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="pytest-pg-"))  # pytest's tmp is closed to other users
    shutil.chown(data, "postgres")
    port = free_port()

    def as_postgres(*cmd: str) -> None:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stdout + out.stderr

    as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    as_postgres(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(data / "log"),
        "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        as_postgres(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "optuna")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/optuna"
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(data)
