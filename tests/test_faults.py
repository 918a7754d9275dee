"""Fault injection: concurrent starts, kills, launchers racing, outages, secrets.

Every test starts real commands and breaks them at a known point (``tests.processes``): what
must hold afterwards is that no record is RUNNING without a live process, no worker outlives
its parent, budgets are exact, nothing finished is lost and no password is written anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from optuna.trial import TrialState

from pipeline.config import ROOT
from pipeline.tracking import lifecycle, store
from sweeps import storage
from tests.conftest import new_store
from tests.processes import act_when, descendants, signal_when, wait_for

TINY = ["data.max_train=1000", "data.max_test=200", "trainer.progress=false"]
LONG = ["trainer.epochs=500", "trainer.patience=500"]  # stopped by the test, never by itself


@pytest.fixture(autouse=True)
def _migrated(tmp_path: Path, migrated_store: Path) -> None:
    new_store(tmp_path / "store", migrated_store)  # a store without the 4 s of migrations


def command(module: str, tmp: Path, *args: str, store_dir: str = "store") -> list[str]:
    return [
        sys.executable,
        "-m",
        module,
        f"tracking.uri=sqlite:///{tmp}/{store_dir}/mlflow.db",
        f"hydra.run.dir={tmp}/hydra/{module}-{len(list(tmp.glob('hydra/*')))}",
        *args,
    ]


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def runs(tmp: Path, store_dir: str = "store") -> list:
    client = MlflowClient(f"sqlite:///{tmp}/{store_dir}/mlflow.db")
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def study_of(tmp: Path) -> optuna.Study:
    """The one study of a sweep without groups (named after its settings)."""
    url = storage.open_storage(f"journal:{tmp}/study.journal")
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url)


def trials_of(tmp: Path) -> list:
    """The study's trials, or none while the study does not exist yet."""
    try:
        return study_of(tmp).get_trials()
    except ValueError:  # no study to unpack
        return []


def sweep_args(tmp: Path, *args: str) -> list[str]:
    return [
        *TINY,
        "trainer.epochs=30",
        "sweep.groups=[]",  # one study: the budget is the whole sweep's
        f"study.storage=journal:{tmp}/study.journal",
        *args,
    ]


def training_started(proc: subprocess.Popen) -> None:
    while not proc.stdout.readline().startswith("epoch"):
        assert proc.poll() is None, proc.stderr.read()


def test_concurrent_starts_on_a_fresh_store_all_finish(tmp_path: Path) -> None:
    # MLflow migrates a new SQLite store on first connect; six at once used to corrupt it
    raw = OmegaConf.load(ROOT / "conf" / "config.yaml")
    default_dir = OmegaConf.to_container(raw)["hydra"]["run"]["dir"]  # unresolved
    run_dir = f"hydra.run.dir={tmp_path}/hydra/{default_dir.split('/', 1)[1]}"
    procs = [
        start(
            [
                *command("pipeline.train", tmp_path, *TINY, "trainer.epochs=1", store_dir="new"),
                run_dir,
            ]
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    assert sorted(r.info.status for r in runs(tmp_path, "new")) == ["FINISHED"] * 6
    # started in the same second, each has its own Hydra output folder
    folders = [p for p in (tmp_path / "hydra").rglob(".hydra")]
    assert len(folders) == 6


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_a_killed_training_run_never_stays_running(tmp_path: Path, sig: int) -> None:
    proc = start(command("pipeline.train", tmp_path, *LONG, "data.max_train=1000"))
    training_started(proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    (run,) = runs(tmp_path)
    if sig == signal.SIGHUP:  # a closed terminal: the command ends its run itself
        assert err.strip() == "interrupted: the MLflow run was ended as KILLED"
        assert run.info.status == "KILLED"
        return
    assert run.info.status == "RUNNING"  # nobody could end it ...
    store.open_experiment(f"sqlite:///{tmp_path}/store/mlflow.db", "mnist-mlp")
    run = MlflowClient(f"sqlite:///{tmp_path}/store/mlflow.db").get_run(run.info.run_id)
    assert run.info.status == "KILLED"  # ... until the next command opened the store
    assert f"pid {proc.pid} on" in run.data.tags[lifecycle.ENDED_TAG]


@pytest.mark.skipif(
    subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True).returncode != 0,
    reason="needs unshare (root) for a PID namespace",
)
def test_a_live_run_in_its_own_pid_namespace_is_not_ended_from_outside(tmp_path: Path) -> None:
    # a container sharing the host's name: inside it the run's pid is 1
    inner = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM"]
    proc = start([*inner, *command("pipeline.train", tmp_path, *LONG, "data.max_train=1000")])
    training_started(proc)
    store.open_experiment(f"sqlite:///{tmp_path}/store/mlflow.db", "mnist-mlp")  # ends stale
    (run,) = runs(tmp_path)
    assert run.info.status == "RUNNING" and lifecycle.ENDED_TAG not in run.data.tags
    assert run.data.tags[lifecycle.OWNERS_TAG].split(":")[1] == "1"
    for pid in descendants(proc.pid):  # the run's own process ends it (unshare forwards none)
        os.kill(pid, signal.SIGTERM)
    proc.communicate(timeout=120)
    assert (
        MlflowClient(f"sqlite:///{tmp_path}/store/mlflow.db").get_run(run.info.run_id).info.status
        == "KILLED"
    )


def test_a_run_on_another_machine_ends_only_when_its_heartbeat_stops() -> None:
    elsewhere = ["other-host/boot:123:456"]
    now = 10_000.0
    assert not lifecycle.is_stale(elsewhere, now - lifecycle.stale_after() / 2, now)
    assert lifecycle.is_stale(elsewhere, now - 2 * lifecycle.stale_after(), now)
    assert not lifecycle.is_stale(elsewhere, None, now)  # no heartbeat: cannot know, leave it
    assert not lifecycle.is_stale([], None, now)  # not ours
    assert not lifecycle.is_stale([lifecycle.me()], 0.0, now)  # alive here, whatever the beat
    dead_here = f"{lifecycle.this_host()}:{2**22 + 1}:1"
    assert lifecycle.is_stale([dead_here, *elsewhere], now, now) is False  # the other beats
    assert lifecycle.is_stale([dead_here], now, now)


def test_killing_a_sweep_worker_or_its_parent_leaves_no_orphan_and_exact_totals(
    tmp_path: Path,
) -> None:
    cmd = command("sweeps", tmp_path, *sweep_args(tmp_path, "n_trials=5", "workers=2"))
    cmd += ["trainer.patience=30", "study.pruner=none"]
    proc = start(cmd, start_new_session=True)

    def in_training(pid: int | None = None) -> list[int]:
        """The trials (of worker ``pid``) in the middle of their epochs."""
        return [
            t.number
            for t in trials_of(tmp_path)
            if t.state == TrialState.RUNNING
            and 1 <= len(t.intermediate_values) < 25
            and (pid is None or t.user_attrs["owner"].rsplit(":", 2)[1] == str(pid))
        ]

    # first a worker dies in a trial: that trial is failed and run again
    wait_for(in_training, "a trial in training")
    running = [t for t in trials_of(tmp_path) if t.state == TrialState.RUNNING]
    victim = int(running[0].user_attrs["owner"].rsplit(":", 2)[1])
    lock = tmp_path / "study.journal.lock"

    def victim_training() -> bool:  # not while it holds the lock: the rest would wait 30 s
        return not lock.is_symlink() and bool(in_training(victim))

    signal_when(proc, victim_training, signal.SIGKILL, pid=victim)
    killed = set(in_training(victim))  # stays RUNNING until the launcher fails it
    # then the parent dies while another trial trains: the other worker follows it
    wait_for(lambda: set(in_training()) - killed, "another trial in training")
    family = descendants(proc.pid)
    proc.kill()
    proc.communicate(timeout=60)
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in family), "no orphan")

    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    trials = study_of(tmp_path).trials
    assert sum(storage.counted(t) for t in trials) == 5  # exactly the budget
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if "interrupted" in t.user_attrs]) >= 2
    ended = runs(tmp_path)  # the worker that followed its parent ends KILLED, whenever the
    # signal landed (once it was in Optuna's lock release, which then raised FileNotFoundError)
    failed = [
        r.data.tags.get("error") for r in ended if r.info.status not in ("FINISHED", "KILLED")
    ]
    assert not failed
    parents = [r for r in runs(tmp_path) if r.data.tags.get("kind") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


def test_two_launchers_share_one_budget_and_one_parent_run(tmp_path: Path) -> None:
    cmd = command("sweeps", tmp_path, *sweep_args(tmp_path, "n_trials=6", "trainer.epochs=3"))
    procs = [start(cmd), start(cmd)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    trials = study_of(tmp_path).trials
    assert len(trials) == 6 and all(storage.counted(t) for t in trials)
    parents = [r for r in runs(tmp_path) if r.data.tags.get("kind") == "study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # each trial's sampler is seeded from its number: the launchers never draw the same point,
    # so no trial reuses another's run, and each has its own child of the one parent
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6
    children = [r for r in runs(tmp_path) if r.data.tags.get("kind") == "trial"]
    assert sorted(c.info.run_id for c in children) == sorted(
        t.user_attrs["mlflow_run_id"] for t in trials
    )
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


UTS = subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


@pytest.mark.slow  # 30-95 s on 2 cores: a server, two launchers, a 10 s timeout
@pytest.mark.skipif(not UTS, reason="needs unshare --uts (root) for host names of their own")
def test_launchers_on_two_hosts_one_killed_the_other_finishes_the_study(
    tmp_path: Path, mlflow_server, monkeypatch
) -> None:
    """Two machines (UTS namespaces: host-a, host-b) on one study storage and one MLflow
    server: host-a's launcher dies in a trial; host-b fails that trial once its heartbeat is
    older than the timeout, runs it again and ends the shared parent FINISHED."""
    args = sweep_args(tmp_path, "n_trials=6", "study.pruner=none", "trainer.stopping=none")
    args += ["trainer.epochs=150", "tracking.stale_after=10"]  # trials long beside a start
    cmd = [*command("sweeps", tmp_path, *args), f"tracking.uri={mlflow_server.url}"]

    def on(host: str) -> subprocess.Popen:  # the shell execs the launcher: one pid
        return start(["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "-", *cmd])

    def of(host: str) -> list:
        return [t for t in trials_of(tmp_path) if t.user_attrs.get("owner", "").startswith(host)]

    def in_training(host: str) -> bool:
        return any(
            t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < 140
            for t in of(host)
        )

    # both at work on the study before host-a dies (started together, host-b, never frozen
    # by the looks below, ran all six trials before host-a had begun one)
    a = on("host-a")
    wait_for(lambda: in_training("host-a/"), "host-a in a trial")
    b = on("host-b")
    wait_for(lambda: in_training("host-b/"), "host-b in a trial")

    def kill_a_freeze_b() -> None:  # host-b must not spend the budget before host-a is stale
        a.kill()
        os.kill(b.pid, signal.SIGSTOP)

    act_when(a, lambda: in_training("host-a/"), kill_a_freeze_b)
    a.communicate(timeout=60)
    (dead,) = [t for t in of("host-a/") if t.state == TrialState.RUNNING]
    stale = lifecycle.stale_after
    monkeypatch.setenv(lifecycle.STALE_AFTER_ENV, "10")  # this process judges as the hosts do
    wait_for(lambda: stale() < time.time() - dead.user_attrs["heartbeat"], "host-a gone stale")
    os.kill(b.pid, signal.SIGCONT)
    out, err = b.communicate(timeout=600)
    assert b.returncode == 0, err
    if study_of(tmp_path).trials[dead.number].state == TrialState.RUNNING:
        # host-b had asked for its last trial before host-a's went stale: it says so, and a
        # re-run there finishes the study
        assert f"1 running: #{dead.number} on host-a (pid {a.pid}), re-run after" in out
        rerun = on("host-b")
        _, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err
    trials = study_of(tmp_path).trials
    counted = [t for t in trials if storage.counted(t)]
    assert len(counted) == 6 and len({tuple(sorted(t.params.items())) for t in counted}) == 6
    assert [t.number for t in trials if not storage.counted(t)] == [dead.number]
    assert "interrupted" in study_of(tmp_path).trials[dead.number].user_attrs
    client, experiment_id = store.open_experiment(mlflow_server.url, "mnist-mlp")  # ends stale
    found = client.search_runs([experiment_id])
    (parent,) = [r for r in found if r.data.tags["kind"] == "study"]
    assert parent.info.status == "FINISHED"
    assert "RUNNING" not in {r.info.status for r in found}
    assert {r.data.tags.get("mlflow.parentRunId") for r in found if r is not parent} == {
        parent.info.run_id
    }


def test_a_named_study_refuses_to_resume_with_other_settings(tmp_path: Path) -> None:
    named = ("study.name=mine", "n_trials=1")
    first = command("sweeps", tmp_path, *sweep_args(tmp_path, *named, "trainer.epochs=2"))
    subprocess.run(first, cwd=ROOT, capture_output=True, timeout=600, check=True)
    other = sweep_args(tmp_path, *named, "trainer.epochs=1", "data.max_train=2000")
    out = subprocess.run(
        command("sweeps", tmp_path, *other), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "study 'mine' was made with other settings" in out.stderr
    assert "data.max_train was 1000, now 2000" in out.stderr
    assert "trainer.epochs was 2, now 1" in out.stderr
    assert len(study_of(tmp_path).trials) == 1  # nothing ran


def test_ctrl_c_in_a_two_worker_sweep_is_one_line_and_ends_everything(tmp_path: Path) -> None:
    cmd = command("sweeps", tmp_path, *sweep_args(tmp_path, "n_trials=6", "workers=2"))
    cmd += [*LONG]
    proc = start(cmd, start_new_session=True)  # its own process group, like a terminal's job
    wait_for(  # both workers in the middle of a trial's 500 epochs
        lambda: (
            sum(
                t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < 400
                for t in trials_of(tmp_path)
            )
            == 2
        ),
        "both workers in a trial",
    )
    family = descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches every process of the group
    out, err = proc.communicate(timeout=120)
    assert err.strip().splitlines() == [
        "interrupted: run the same command again to resume the study"
    ]
    assert "Traceback" not in out + err
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in family), "no orphan")
    trials = study_of(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all("interrupted" in t.user_attrs and not storage.counted(t) for t in trials)
    assert {r.info.status for r in runs(tmp_path)} == {"KILLED"}


def test_a_tracking_outage_keeps_the_record_and_uploads_it_later(
    tmp_path: Path, make_config, mlflow_server, caplog
) -> None:
    from pipeline import train

    outbox = tmp_path / "outbox"
    cfg = make_config(
        "data.max_train=2000",
        "trainer.epochs=6",
        "trainer.patience=6",
        f"tracking.uri={mlflow_server.url}",
        f"tracking.outbox={outbox}",
    )

    def outage(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            mlflow_server.stop()  # the store goes away in the middle of training

    result = train.run(cfg, hooks=[outage])
    assert len(result.history) == 6 and result.test_accuracy > 0.5  # training went on
    (kept,) = outbox.iterdir()
    assert result.outbox == str(kept) and kept.name == result.run_id
    assert f"the run's record is kept in {kept}" in caplog.text
    record = json.loads((kept / "record.json").read_text())
    assert record["status"] == "FINISHED"
    assert {"model.npz", "history.csv", "config.yaml"} <= {
        p.name for p in (kept / "artifacts").iterdir()
    }
    assert f"python -m pipeline.tracking.outbox {kept}" in train.outbox_message(str(kept))

    mlflow_server.start()  # the store is back: upload
    up = subprocess.run(
        [sys.executable, "-m", "pipeline.tracking.outbox", str(kept), "--uri", mlflow_server.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr
    assert not kept.exists()
    client = MlflowClient(mlflow_server.url)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_accuracy"] == result.test_accuracy
    history = client.get_metric_history(result.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5, 6]
    assert {"model.npz", "curves.png"} <= {a.path for a in client.list_artifacts(result.run_id)}
    assert run.data.tags["model_uri"].startswith("models:/")  # the model came with it: servable


def test_a_store_that_breaks_mid_run_keeps_the_record_in_the_outbox(tmp_path: Path) -> None:
    # a full disk or a store file truncated under the run: MLflow's own errors, not a server's
    outbox = tmp_path / "outbox"
    args = ["data.max_train=1000", "trainer.epochs=8", "trainer.patience=8"]
    proc = start(command("pipeline.train", tmp_path, *args, f"tracking.outbox={outbox}"))
    training_started(proc)
    os.kill(proc.pid, signal.SIGSTOP)
    (tmp_path / "store" / "mlflow.db").write_bytes(b"")
    os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in err, err
    (kept,) = outbox.iterdir()
    assert err.strip().splitlines()[-1].startswith("error: ") and str(kept) in err
    assert "cannot write to the tracking store" in out and out.count("epoch ") == 8
    record = json.loads((kept / "record.json").read_text())
    assert record["status"] == "FINISHED" and record["model"]["preprocessing"]["normalize"]
    assert {m[0] for m in record["metrics"]} >= {"val_loss", "test_accuracy"}
    assert (kept / "artifacts" / "model.npz").is_file() and (kept / "model-example.npy").is_file()


def test_an_outage_mid_sweep_is_one_line_and_the_next_command_ends_the_parent(
    tmp_path: Path, mlflow_server
) -> None:
    # the audit: launchers exited with 149- and 249-line chained tracebacks (the parent run's
    # end called the stopped server again on the error path)
    args = sweep_args(tmp_path, "n_trials=2", "study.pruner=none", "trainer.stopping=none")
    args += [f"tracking.outbox={tmp_path}/outbox", "trainer.epochs=60"]
    cmd = [*command("sweeps", tmp_path, *args), f"tracking.uri={mlflow_server.url}"]
    proc = start(cmd)

    def in_training() -> bool:
        return any(
            t.state == TrialState.RUNNING and 1 <= len(t.intermediate_values) < 50
            for t in trials_of(tmp_path)
        )

    act_when(proc, in_training, mlflow_server.stop)  # the server goes away mid-trial
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "Traceback" not in out + err
    (line,) = err.strip().splitlines()
    (kept,) = (tmp_path / "outbox").iterdir()  # the trial's record, to upload later
    assert line.startswith("error: the tracking store went away") and str(kept) in line
    assert "Retrying" not in out  # urllib3's retries are not the user's business
    assert [t.state for t in study_of(tmp_path).trials] == [TrialState.COMPLETE]
    mlflow_server.start()
    client, experiment_id = store.open_experiment(mlflow_server.url, "mnist-mlp")
    statuses = {r.data.tags["kind"]: r.info.status for r in client.search_runs([experiment_id])}
    assert statuses == {"study": "KILLED", "trial": "KILLED"}  # until the outbox is uploaded


def test_an_unreachable_store_fails_at_once_with_one_line(tmp_path: Path) -> None:
    from tests.conftest import free_port

    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        *TINY,
        f"tracking.uri=http://127.0.0.1:{free_port()}",
        f"hydra.run.dir={tmp_path}/hydra",
    ]
    # MLflow's own retries took about 250 s per call; the bound here is far below that
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: tracking store http://127.0.0.1:") and "unreachable" in line


def written_anywhere(secret: str, folder: Path, *outputs: str) -> list[str]:
    """Every output and file under ``folder`` (the store and its artifacts too) holding it."""
    texts = {"output": "\n".join(outputs)}
    texts |= {str(p): p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()}
    return [name for name, text in texts.items() if secret in text]


def test_credentials_of_a_tracking_server_are_never_written(tmp_path: Path, mlflow_server) -> None:
    # a server behind basic auth (user:password in the URL) or a token in the environment
    secret, token = "pw-s3cr3t", "tok-s3cr3t"
    url = mlflow_server.url.replace("http://", f"http://u:{secret}@")
    cmd = [
        sys.executable,
        "-m",
        "pipeline.train",
        "-m",
        f"tracking.uri={url}",
        *TINY,
        "trainer.epochs=1",
        "trainer.seed=0,1",
        f"hydra.sweep.dir={tmp_path}/multirun",
    ]
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": token}
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert "#1 : tracking.uri=http\\://u\\:***@" in out.stdout  # the banner, masked
    assert written_anywhere(secret, tmp_path, out.stdout, out.stderr) == []
    assert written_anywhere(token, tmp_path, out.stdout, out.stderr) == []
    trained = [r for r in runs(tmp_path, "mlruns") if r.data.tags.get("kind") == "run"]
    assert len(trained) == 2  # the runs and their config.yaml artifacts were searched


def test_passwords_never_reach_outputs_or_the_store(tmp_path: Path, postgres: str) -> None:
    secret = "s3cr3t-pw"
    url = f"{postgres}?password={secret}"  # the query form (trust auth ignores it)
    cmd = command(
        "sweeps",
        tmp_path,
        *TINY,
        "trainer.epochs=2",
        "n_trials=1",
        f"study.storage='{url}'",  # quoted: = and ? are Hydra syntax
    )
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert written_anywhere(secret, tmp_path, out.stdout, out.stderr) == []
    parent = next(r for r in runs(tmp_path) if r.data.tags.get("kind") == "study")
    assert parent.data.tags["optuna.storage"] == store.mask(url)
