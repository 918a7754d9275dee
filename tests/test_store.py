"""Where the MLflow store is, how a bad one is refused (one line), and URLs shown masked."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import ROOT
from pipeline.tracking import sqlite
from pipeline.tracking import store as tracking_store
from tests.conftest import new_store
from tests.processes import signal_when


def test_the_store_is_the_config_then_the_environment_then_the_repositorys(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # relative SQLite paths are the repository's, not the cwd's
    assert tracking_store.tracking_uri() == f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}"
    assert tracking_store.tracking_uri("sqlite:///rel/x.db") == f"sqlite:///{ROOT / 'rel' / 'x.db'}"
    assert tracking_store.tracking_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_store.tracking_uri() == "http://127.0.0.1:5000"
    assert tracking_store.tracking_uri("postgresql://u@h/db") == "postgresql://u@h/db"


def test_local_companions_and_artifacts_live_beside_a_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/s/mlflow.db"
    assert tracking_store.sqlite_path(uri) == f"{tmp_path}/s/mlflow.db"
    assert (
        tracking_store.sqlite_path("http://h") is None
        and tracking_store.sqlite_path("sqlite://x") is None
    )
    assert tracking_store.artifact_root(uri) == (tmp_path / "s" / "artifacts").as_uri()
    assert tracking_store.artifact_root("http://h:5000") is None
    assert tracking_store.local_folder(uri) == tmp_path / "s"
    assert tracking_store.local_folder("http://h:5000") == ROOT / "mlruns"


def test_passwords_are_masked_wherever_they_appear() -> None:
    assert (
        tracking_store.mask("postgresql+psycopg://u:pw@h:5432/db")
        == "postgresql+psycopg://u:***@h:5432/db"
    )
    assert (
        tracking_store.mask("a http://x:y@h b mysql://n:p@q")
        == "a http://x:***@h b mysql://n:***@q"
    )
    assert (
        tracking_store.mask("sqlite:////tmp/x.db http://h:5000/p")
        == "sqlite:////tmp/x.db http://h:5000/p"
    )
    assert (
        tracking_store.mask("postgresql://u@h/db?sslmode=require&password=pw;x 'http://h/?token=t'")
        == "postgresql://u@h/db?sslmode=require&password=***;x 'http://h/?token=***'"
    )


def test_secrets_from_the_environment_are_masked_in_every_line(monkeypatch, caplog) -> None:
    import logging

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-123456")
    monkeypatch.setenv("PGPASSWORD", "pw")  # too short to mask without masking words
    assert tracking_store.mask("Bearer tok-123456, pw ok") == "Bearer ***, pw ok"
    logger = logging.getLogger("test.masking")
    logger.addFilter(tracking_store.MaskingFilter())
    with caplog.at_level(logging.INFO, "test.masking"):
        logger.info("%s and %s", "http://u:secret@h", "tok-123456")
    assert caplog.records[-1].getMessage() == "http://u:***@h and ***"


def test_the_reason_of_a_connection_error_is_its_useful_part() -> None:
    assert tracking_store._reason(OSError("[Errno 111] Connection refused")) == "Connection refused"
    error = OSError("x [Errno -2] Name or service not known) y")
    assert tracking_store._reason(error) == "Name or service not known"
    assert tracking_store._reason(ValueError("x\nconnection timed out y")) == "timed out"
    assert tracking_store._reason(ValueError("first line\nsecond")) == "first line"
    assert tracking_store._reason(ValueError("")) == "ValueError"
    assert tracking_store._reason(ValueError("y" * 300)) == "y" * 200


def test_a_folder_or_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    def prepare(path: Path) -> None:
        sqlite.prepare(f"sqlite:///{path}", path, (tmp_path / "artifacts").as_uri())

    with pytest.raises(sqlite.StoreFileError) as err:
        prepare(tmp_path)
    assert str(err.value) == (
        f"tracking.uri=sqlite:///{tmp_path}: {tmp_path} is a folder; name a database file in it"
    )
    text = tmp_path / "notes.db"
    text.write_text("not a database, and long enough")
    with pytest.raises(sqlite.StoreFileError) as err:
        prepare(text)
    assert str(err.value) == (
        f"tracking.uri=sqlite:///{text}: {text} is not an SQLite database; point tracking.uri "
        "at an MLflow store or at a new file"
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(sqlite.StoreFileError, match=r"create .*file/sub \(Not a directory\)"):
        prepare(tmp_path / "file" / "sub" / "x.db")


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:  # its own metrics table, and one MLflow never has
        db.execute("CREATE TABLE metrics (name TEXT, score REAL)")
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO metrics VALUES ('a', 1.0)")
    before = foreign.read_bytes()
    with pytest.raises(tracking_store.StoreError) as err:
        tracking_store.client(f"sqlite:///{foreign}")
    expected = "another application's database (tables metrics, users), not an MLflow store; it was"
    assert f"{expected} not touched" in str(err.value)
    assert foreign.read_bytes() == before


def test_a_store_left_half_created_is_set_aside_and_made_again(
    tmp_path: Path, migrated_store: Path
) -> None:
    half = Path(new_store(tmp_path, migrated_store).removeprefix("sqlite:///"))
    with sqlite3.connect(half) as db:  # a migration cut short: not at the latest revision
        db.execute("DELETE FROM alembic_version")
    sqlite.prepare(f"sqlite:///{half}", half, tracking_store.artifact_root(f"sqlite:///{half}"))
    assert sqlite._complete(half, sqlite._tables(half))
    (aside,) = tmp_path.glob("mlflow.db.broken-*")
    assert not sqlite._complete(aside, sqlite._tables(aside))


def test_a_store_creation_killed_midway_is_redone(tmp_path: Path) -> None:
    db = tmp_path / "new" / "mlflow.db"
    code = f"from pipeline.tracking import store; store.client('sqlite:///{db}')"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    signal_when(  # in the middle of the migrations
        proc, lambda: any(db.parent.glob(".mlflow.db.creating-*")), signal.SIGKILL
    )
    proc.wait()
    assert not db.exists()  # nothing half-made under the store's name
    client = tracking_store.client(f"sqlite:///{db}")  # the next command makes it whole
    assert client.search_experiments() and not list(db.parent.glob(".mlflow.db.creating-*"))
    assert sqlite._complete(db, sqlite._tables(db))


def test_an_unknown_scheme_or_an_unreachable_database_is_one_line() -> None:
    with pytest.raises(tracking_store.StoreError) as err:
        tracking_store.client("foo://u:secret@h/x")
    assert str(err.value) == (
        "tracking.uri=foo://u:***@h/x is invalid: expected sqlite:///<file>, "
        "postgresql://..., mysql://... or http(s)://<MLflow server>"
    )
    from tests.conftest import free_port

    url = f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/db"
    with pytest.raises(tracking_store.StoreError) as err:
        tracking_store._probe_database(url)
    assert str(err.value) == (
        f"tracking store {tracking_store.mask(url)} is unreachable (Connection refused): start "
        "it, or point tracking.uri (or MLFLOW_TRACKING_URI) at a running one"
    )


def test_a_new_experiment_is_made_once_with_its_kind(store: str) -> None:
    from mlflow import MlflowClient

    open_experiment = tracking_store.open_experiment.__wrapped__  # not the per-process cache
    _, made = open_experiment(store, "made-here")
    experiment = MlflowClient(store).get_experiment(made)
    assert experiment.name == "made-here"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.artifact_location == tracking_store.artifact_root(store)
    assert open_experiment(store, "made-here")[1] == made  # found, not made again


@pytest.mark.parametrize(
    ("url", "connect_args"),
    [("postgresql+psycopg://u@h/db", {"connect_timeout": 5}), ("mysql://u@h/db", {})],
)
def test_a_database_is_probed_with_a_short_connect_timeout(
    monkeypatch, url: str, connect_args: dict
) -> None:
    import sqlalchemy

    seen: list[dict] = []

    def create_engine(uri: str, **kwargs):
        seen.append(kwargs)
        raise OSError("[Errno 113] No route to host")

    monkeypatch.setattr(sqlalchemy, "create_engine", create_engine)
    with pytest.raises(tracking_store.StoreError, match=r"unreachable \(No route to host\)"):
        tracking_store._probe_database(url)
    assert seen == [{"connect_args": connect_args}]


def test_the_first_open_quiets_mlflow_and_names_an_unusable_store(monkeypatch) -> None:
    import logging

    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    logging.getLogger("mlflow").setLevel(logging.INFO)
    url = f"http://u:secret@127.0.0.1:{free_port()}"
    with pytest.raises(tracking_store.StoreError) as err:
        tracking_store._first_call(url)
    assert logging.getLogger("mlflow").level == logging.WARNING
    assert str(err.value) == (
        f"tracking store http://u:***@127.0.0.1:{url.rsplit(':', 1)[1]} is unreachable or "
        "unusable (Connection refused): start it, or point tracking.uri (or "
        "MLFLOW_TRACKING_URI) at a running one"
    )
