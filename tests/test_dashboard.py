"""make dashboard: the real optuna-dashboard on loopback, answering only to loopback names (a
page using DNS rebinding sends its own name as ``Host``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import requests

from pipeline.config import ROOT
from sweeps import dashboard, storage
from tests.conftest import free_port


def test_host_names_without_their_port() -> None:
    assert dashboard.host_name("127.0.0.1:8080") == "127.0.0.1"
    assert dashboard.host_name("[::1]:8080") == "[::1]" == dashboard.host_name("[::1]")
    assert dashboard.host_name("evil.example:8089") == "evil.example"
    assert dashboard.host_name("localhost") == "localhost"


def test_the_dashboard_refuses_other_host_names(tmp_path: Path) -> None:
    url = f"journal:{tmp_path}/studies.journal"
    optuna.create_study(study_name="s", storage=storage.open_storage(url))
    port = free_port()
    cmd = [sys.executable, "-m", "sweeps.dashboard", f"--port={port}", f"--storage={url}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert (
            proc.stdout.readline().strip() == f"optuna-dashboard: http://127.0.0.1:{port}/dashboard"
        )
        api = f"http://127.0.0.1:{port}/api/studies"
        evil = {"Host": f"evil.example:{port}"}
        assert requests.get(api, headers=evil, timeout=30).status_code == 403
        assert requests.delete(f"{api}/0", headers=evil, timeout=30).status_code == 403
        assert requests.get(api, timeout=30).status_code == 200  # Host: 127.0.0.1:<port>
        local = {"Host": f"localhost:{port}"}
        assert requests.get(api, headers=local, timeout=30).status_code == 200
        storage.open_storage.cache_clear()
        assert [
            s.study_name for s in optuna.get_all_study_summaries(storage.open_storage(url))
        ] == ["s"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
