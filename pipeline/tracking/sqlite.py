"""A local SQLite store file: checked before MLflow touches it, created whole or not at all.

MLflow migrates a new database in place over about 4 s, and a migration cut short (Ctrl-C, a
kill) leaves a file every later connect fails on ("table ... already exists"). So a new store
is migrated in a temporary file beside it and renamed into place once complete: the store
exists whole or not at all. A file already left half-created by an older version, with no
runs in it, is set aside and made again. A database that is not an MLflow store (another
application's) is refused before any connect, since MLflow would add its tables to it and
alter the ones whose names it shares. Callers hold the store's lock.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)
HEADER = b"SQLite format 3\x00"


class StoreFileError(RuntimeError):
    """The file cannot be an MLflow store; the message names it and the fix."""


def _tables(path: Path) -> set[str]:
    """The file's tables, read without writing (read-only, no journal created)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows} - {"sqlite_sequence"}


def _rows(path: Path, table: str) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]


def _is_mlflow(path: Path, tables: set[str]) -> bool:
    """An MLflow store, or one whose creation stopped before its first migration (some of
    MLflow's initial tables, all empty). Anything else is another application's."""
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    if {"alembic_version", "experiments", "runs"} <= tables:
        return True
    initial = set(InitialBase.metadata.tables)
    return tables <= initial and not any(_rows(path, t) for t in tables)


def _complete(path: Path, tables: set[str]) -> bool:
    """The schema at MLflow's latest revision: every migration ran."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    if "alembic_version" not in tables:
        return False
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        versions = db.execute("SELECT version_num FROM alembic_version").fetchall()
    return versions == [(_get_latest_schema_revision(),)]


def create(path: Path, artifact_root: str) -> None:
    """Migrate a new store in a temporary file, then rename it to ``path``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # after the import, which sets INFO
    for left in path.parent.glob(f".{path.name}.creating-*"):  # a creation cut short
        left.unlink()
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}")
    SqlAlchemyStore(f"sqlite:///{tmp}", artifact_root).engine.dispose()
    os.replace(tmp, path)


def prepare(uri: str, path: Path, artifact_root: str) -> None:
    """Make ``path`` a complete MLflow store, or refuse it in one line."""
    if path.is_dir():
        raise StoreFileError(f"tracking.uri={uri}: {path} is a folder; name a database file in it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreFileError(
            f"tracking.uri={uri}: cannot create {path.parent} ({err.strerror})"
        ) from None
    if not path.is_file() or not path.stat().st_size:
        create(path, artifact_root)  # new, or an empty file
        return
    with open(path, "rb") as f:
        if f.read(16) != HEADER:
            raise StoreFileError(
                f"tracking.uri={uri}: {path} is not an SQLite database; point tracking.uri "
                "at an MLflow store or at a new file"
            )
    tables = _tables(path)
    if not _is_mlflow(path, tables):
        raise StoreFileError(
            f"tracking.uri={uri}: {path} is another application's database (tables "
            f"{', '.join(sorted(tables)[:5])}), not an MLflow store; it was not touched: point "
            "tracking.uri at an MLflow store or at a new file"
        )
    if _complete(path, tables) or ("runs" in tables and _rows(path, "runs")):
        return  # a store (an older schema with runs is MLflow's to upgrade, on request)
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    log.warning(f"warning: {path} was left half-created, with no runs: set aside as {aside.name}")
    create(path, artifact_root)
