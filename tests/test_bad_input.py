"""Every command refuses bad input in one line, before any work, with no traceback.

The commands run in this process (their Hydra apps called with a patched ``sys.argv``): a
table of inputs per command, each expected to end with ``error: <key> ...`` naming the key.
Inputs Hydra itself rejects (an unknown key or group, an override it cannot read, a config
file that does not parse) end the same way, in Hydra's words on one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import gradcheck, train
from sweeps import __main__ as sweeps_main
from sweeps import forensics
from sweeps.report import __main__ as report
from tests.conftest import free_port

CLOSED = free_port()  # nothing listens here
SECRET = "pw-9f2c"
COMMANDS: dict[str, Callable[[], object]] = {
    "train": train.main,
    "sweeps": sweeps_main.main,
    "report": report.main,
    "gradcheck": gradcheck.main,
    "forensics": forensics.main,
}

CASES = [
    ("train", ["trainer.seed=-1"], "trainer.seed=-1 is invalid: expected an integer >= 0"),
    ("train", ["data.max_train=3000", "data.val_fraction=0.9999"], "leaves 0 for training"),
    ("train", ["data.val_fraction=1"], "data.val_fraction=1.0 is invalid"),
    ("train", ["model.hidden=[100000000]"], "model.hidden=[100000000] needs about"),
    ("train", ["model.hidden=[128,0]"], "model.hidden=[128, 0] is invalid"),
    ("train", ["tracking.experiment="], "tracking.experiment='' is invalid"),
    ("train", ["tracking.uri=foo://bar"], "tracking.uri=foo://bar is invalid: expected sqlite"),
    ("train", [f"tracking.uri=http://127.0.0.1:{CLOSED}"], "is unreachable"),
    (
        "train",
        [f"tracking.uri=postgresql+psycopg://u:{SECRET}@127.0.0.1:{CLOSED}/db"],
        "tracking store postgresql+psycopg://u:***@127.0.0.1",
    ),
    ("train", ["regularizer.lam=inf"], "regularizer.lam=inf is invalid"),
    ("train", ["regularizer=l1", "regularizer.scale=avg"], "regularizer.scale='avg' is invalid"),
    ("train", ["optimizer.lr=abc"], "optimizer.lr: Value 'abc' of type 'str' could not be"),
    ("train", ["optimizer.gamma=1"], "optimizer.gamma=1.0 is invalid"),
    ("train", ["trainer.batch_size=0"], "trainer.batch_size=0 is invalid"),
    ("train", ["trainer.epochs=1.5"], "trainer.epochs: Value '1.5' of type 'float'"),
    ("train", ["trainer.stopping=never"], "trainer.stopping='never' is invalid"),
    ("train", ["model.activation=swish"], "model.activation='swish' is invalid"),
    ("train", ["model.init=zeros"], "model.init='zeros' is invalid with hidden layers"),
    ("train", ["data.normalize=minmax"], "data.normalize='minmax' is invalid"),
    ("train", ["data.max_train=5"], "data.max_train=5 is invalid"),
    ("train", ["data.dir=/nonexistent"], "file not found"),
    ("train", ["trainer.progress=2"], "trainer.progress=2 is invalid: expected true or false"),
    ("train", ["tracking.experiment=" + "x" * 501], "of at most 500 characters"),
    ("train", ["trainer.batch_size=1000000000000"], "trainer.batch_size=1000000000000 needs"),
    ("train", ["tracking.experiment=é€x"], "cannot read the override 'tracking.experiment=é€x'"),
    ("train", ["tracking.experiment=$(whoami)"], "quote a value holding spaces, unicode or"),
    ("train", ["-m", "hydra/launcher=submitit_slurm", "trainer.seed=0,1"], "needs a SLURM"),
    ("train", ["optimizer.lrate=1"], "Could not override 'optimizer.lrate'. To append to your"),
    ("train", ["experiment=nope"], "Could not find 'experiment/nope' Available options in"),
    ("sweeps", ["n_trials=abc"], "n_trials: Value 'abc' of type 'str' could not be converted"),
    ("sweeps", ["n_trials=1.5"], "n_trials: Value '1.5' of type 'float' could not be converted"),
    ("sweeps", ["n_trials=0"], "n_trials=0 is invalid: expected an integer >= 1"),
    ("sweeps", ["min_complete=-1"], "min_complete=-1 is invalid"),
    ("sweeps", ["workers=0"], "workers=0 is invalid"),
    ("sweeps", ["study.seed=-1"], "study.seed=-1 is invalid"),
    ("sweeps", ["study.sampler=bayes"], "study.sampler='bayes' is invalid"),
    ("sweeps", ["study.sampler=grid"], "study.sampler=grid is invalid for this space"),
    ("sweeps", ["study.pruner=always"], "study.pruner='always' is invalid"),
    ("sweeps", ["study.objective=accuracy"], "study.objective='accuracy' is invalid"),
    ("sweeps", ["study.name=a/b"], "study.name='a/b' is invalid"),
    ("sweeps", ["study.storage=foo://bar"], "study.storage=foo://bar is invalid: expected"),
    (
        "sweeps",
        [f"study.storage=postgresql+psycopg://u:{SECRET}@127.0.0.1:{CLOSED}/db"],
        "study.storage=postgresql+psycopg://u:***@127.0.0.1",
    ),
    ("sweeps", ["sweep.params=null"], "sweep 'lr_activation' has no params"),
    ("sweeps", ["sweep.groups=[optimizer.lr]"], "sweep.groups names 'optimizer.lr'"),
    ("sweeps", ["trainer.epochs=0"], "error: trainer.epochs=0 is invalid"),  # not a sweep key
    ("sweeps", ["tracking.uri=foo://bar"], "tracking.uri=foo://bar is invalid"),
    ("sweeps", ["study.threshold=nan"], "study.threshold=nan is invalid: expected a finite"),
    ("sweeps", ["sweep=nope"], "Could not find 'sweep/nope' Available options in 'sweep'"),
    ("report", ["report.seeds=0"], "report.seeds=0 is invalid: expected an integer >= 1"),
    ("report", ["report.seeds=1.5"], "report.seeds: Value '1.5' of type 'float'"),
    ("report", ["report.presets=[]"], "report.presets=[] is invalid"),
    ("report", ["report.presets=[relu,nope]"], "report.presets='nope' is invalid"),
    ("report", ["report.workers=-1"], "report.workers=-1 is invalid"),
    ("report", ["report.out=/proc/x"], "report.out='/proc/x' is not a writable folder"),
    ("report", ["report.tuning.sweep=nope"], "report.tuning.sweep='nope' is invalid"),
    ("report", ["report.tuning.pruner=foo"], "report.tuning.pruner='foo' is invalid"),
    ("report", ["report.tuning.trials=-1"], "report.tuning.min_complete=6, trials=-1 are"),
    ("report", ["report.tuning.trials=x"], "report.tuning.trials: Value 'x' of type 'str'"),
    ("report", ["report.forensics.seeds=0"], "report.forensics.seeds=0 is invalid"),
    ("report", ["report.forensics.rows=[nope]"], "report.forensics.rows='nope' is invalid"),
    ("report", ["report.force=maybe"], "report.force='maybe' is invalid: expected true or"),
    ("report", ["trainer.epochs=0"], "trainer.epochs=0 is invalid"),
    ("report", ["tracking.uri=foo://bar"], "tracking.uri=foo://bar is invalid"),
    ("forensics", [], "experiment=custom is invalid: expected one of the report's experiments"),
    ("forensics", ["experiment=l1", "forensics.seeds=0"], "forensics.seeds=0 is invalid"),
    ("forensics", ["experiment=l1", "forensics.trials=x"], "forensics.trials: Value 'x'"),
    ("forensics", ["experiment=l1", "forensics.storage=foo://x"], "study.storage=foo://x is"),
    ("forensics", ["experiment=l1", "trainer.epochs=0"], "trainer.epochs=0 is invalid"),
    ("gradcheck", ["trainer.seed=-1"], "trainer.seed=-1 is invalid"),
    ("gradcheck", ["model.activation=swish"], "model.activation='swish' is invalid"),
]


def invoke(name: str, args: list[str], tmp: Path, monkeypatch, capsys) -> tuple[object, str]:
    """Run a command in this process; return its exit code and everything it printed."""
    own = {  # never the repository's own report folder or study journal
        "report": f"report.out={tmp}/reports",
        "sweeps": f"study.storage=journal:{tmp}/studies.journal",
        "forensics": f"forensics.storage=journal:{tmp}/studies.journal",
    }.get(name)
    if own and not any(a.startswith(own.split("=")[0] + "=") for a in args):
        args = [*args, own]
    monkeypatch.setattr(sys, "argv", [name, *args, f"hydra.run.dir={tmp}/hydra"])
    with pytest.raises(SystemExit) as exited:
        COMMANDS[name]()
    out, err = capsys.readouterr()
    return exited.value.code, out + err


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    CASES,
    ids=[
        f"{i:02d}-{name}-{(args or ['none'])[-1].split('=')[0]}"
        for i, (name, args, _) in enumerate(CASES)
    ],
)
def test_bad_input_is_one_line(
    name: str,
    args: list[str],
    expected: str,
    tmp_path: Path,
    store: str,
    monkeypatch,
    capsys,
) -> None:
    if not any(a.startswith("tracking.uri") for a in args):
        args = [*args, f"tracking.uri={store}"]
    code, printed = invoke(name, args, tmp_path, monkeypatch, capsys)
    assert "Traceback" not in printed and SECRET not in printed + str(code)
    assert isinstance(code, str) and code.startswith("error: "), (code, printed)
    assert "\n" not in code and expected in code
    # nothing was started: no run in the store, no study, no report files
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())


SPACES = {  # an own search space (--config-dir) that is wrong
    "optimizer.lr: {type: float, low: 0.1 high: [": "a config file does not parse: while parsing",
    "model.hidden: {type: categorical, choices: [[32], [64, 32]]}": (
        "sweep.params.model.hidden.choices holds [32]: a choice must be a number"
    ),
    "model.hidden.0: {type: int, low: 1, high: .inf}": (
        "sweep.params.model.hidden.0.high=inf is invalid: expected a finite number"
    ),
}


@pytest.mark.parametrize(("param", "expected"), SPACES.items(), ids=["yaml", "lists", "inf"])
def test_a_wrong_search_space_file_is_one_line(
    param: str, expected: str, tmp_path: Path, store: str, monkeypatch, capsys
) -> None:
    (tmp_path / "own" / "sweep").mkdir(parents=True)
    space = tmp_path / "own" / "sweep" / "mine.yaml"
    space.write_text(f"name: mine\nparams:\n  {param}\n")
    args = ["--config-dir", str(tmp_path / "own"), "sweep=mine", f"tracking.uri={store}"]
    code, printed = invoke("sweeps", args, tmp_path, monkeypatch, capsys)
    assert "Traceback" not in printed and code.startswith(f"error: {expected}")
    assert "\n" not in code and not (tmp_path / "studies.journal").exists()  # nothing ran


def test_tuning_trials_zero_skips_tuning_as_documented() -> None:
    from sweeps import tuning

    assert tuning.options({"trials": 0}).sweep is None


def test_a_deleted_experiment_is_named_with_the_way_back(
    tmp_path: Path, store: str, monkeypatch, capsys
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(store)
    client.delete_experiment(client.create_experiment("gone"))
    args = ["tracking.experiment=gone", f"tracking.uri={store}", "data.max_train=100"]
    code, printed = invoke("train", args, tmp_path, monkeypatch, capsys)
    assert "Traceback" not in printed
    assert "tracking.experiment='gone' is deleted" in code and "mlflow experiments restore" in code


def test_a_store_that_is_not_a_database_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 10)
    code, printed = invoke(
        "train", [f"tracking.uri=sqlite:///{text}"], tmp_path, monkeypatch, capsys
    )
    assert "Traceback" not in printed and "is not an SQLite database" in code
    assert text.read_text() == "not a database\n" * 10  # untouched


def test_a_failing_report_command_keeps_the_previous_report(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    previous = tmp_path / "reports" / "report.md"
    previous.parent.mkdir()
    previous.write_text("the previous report")
    args = ["report.seeds=0", f"report.out={tmp_path}/reports"]
    code, _ = invoke("report", args, tmp_path, monkeypatch, capsys)
    assert "report.seeds=0 is invalid" in code
    assert previous.read_text() == "the previous report"
