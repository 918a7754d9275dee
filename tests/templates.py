"""What tests build once per process, however many pytest sessions run in it.

``conftest.py`` is imported afresh by every session (``tests/`` is no package), so a cache
kept there lasts one session. ``make mutate`` runs one session per mutant, each in a process
forked from the one that ran the clean tests: a cache kept here is made once, before the forks.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


@functools.cache
def migrated_store() -> Path:
    """An empty MLflow SQLite database with its schema: a new store's first connect runs every
    migration (about 4 s)."""
    from pipeline.tracking import store

    folder = Path(tempfile.mkdtemp(prefix="pytest-mlflow-template-"))
    atexit.register(shutil.rmtree, folder, True)  # forks end with os._exit: never theirs
    path = folder / "mlflow.db"
    store.client(f"sqlite:///{path}")
    return path
