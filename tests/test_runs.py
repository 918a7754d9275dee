"""``python -m pipeline.runs list`` and ``diff`` on a small real store: four short runs."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from pipeline import runs, train
from pipeline.config import to_config
from tests.conftest import new_store

SMALL = ["data.max_train=1000", "data.max_test=200", "trainer.epochs=2", "trainer.progress=false"]
QUIET = ["tracking.model=false", "tracking.figures=false"]  # nothing these tests read


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, migrated_store: Path) -> tuple[str, dict[str, object]]:
    """relu at seeds 0 and 1, relu with another learning rate, softmax (the first and the last
    carry a tag of the user's): their results."""
    uri = new_store(tmp_path_factory.mktemp("runs") / "mlruns", migrated_store)
    results = {}
    for key, overrides in {
        "relu0": ["experiment=relu", "trainer.seed=0"],
        "relu1": ["experiment=relu", "trainer.seed=1"],
        "lr": ["experiment=relu", "optimizer.lr=0.05"],
        "softmax": ["experiment=softmax"],
    }.items():
        cfg = to_config(train.compose([*overrides, *SMALL, *QUIET, f"tracking.uri={uri}"]))
        results[key] = train.run(
            cfg, tags={"note": "baseline"} if key in ("relu0", "softmax") else {}
        )
    return uri, results


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = runs.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_groups_seeds_and_shows_only_what_differs(recorded, capsys) -> None:
    uri, r = recorded
    code, out, _ = cli(capsys, "list", "--uri", uri, "--csv")
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    # the parameters that differ between the rows (the seed is what a group spans)
    keys = {"preset", "optimizer.lr", "model.hidden", "model.activation"}
    assert keys <= set(table.columns) and "trainer.seed" not in table.columns
    assert "data.max_train" not in table.columns  # the same in every run
    relu = table[(table.preset == "relu") & (table["optimizer.lr"] == 0.1)].iloc[0]
    assert relu.runs == 2 and relu.seeds == "0 1"
    accuracies = pd.Series([r["relu0"].test_accuracy, r["relu1"].test_accuracy])
    assert relu.test_accuracy_mean == pytest.approx(accuracies.mean())
    assert relu.test_accuracy_sd == pytest.approx(accuracies.std())  # over seeds (n - 1)
    assert relu.stopped_epoch_mean == 2
    assert len(table) == 3 and sorted(table.runs) == [1, 1, 2]

    code, out, _ = cli(capsys, "list", "--uri", uri)  # the same, as a table to read
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("relu") and " 0 1 " in x)
    assert f"{accuracies.mean():.4f} ± {accuracies.std():.4f}" in line


def test_list_filters_by_preset_and_tag_and_lists_each_run(recorded, capsys) -> None:
    uri, r = recorded
    _, out, _ = cli(capsys, "list", "--uri", uri, "--preset", "relu", "--each", "--csv")
    each = pd.read_csv(io.StringIO(out))
    assert set(each.run_id) == {r[k].run_id for k in ("relu0", "relu1", "lr")}
    assert {"optimizer.lr", "trainer.seed"} <= set(each.columns)  # they differ here
    assert "model.activation" not in each.columns  # relu in all three
    _, out, _ = cli(capsys, "list", "--uri", uri, "--tag", "note=baseline", "--each", "--csv")
    assert set(pd.read_csv(io.StringIO(out)).run_id) == {r[k].run_id for k in ("relu0", "softmax")}
    code, _, err = cli(capsys, "list", "--uri", uri, "--tag", "kind")
    assert (
        code == 1
        and err == "error: --tag 'kind' is invalid: expected KEY=VALUE, e.g. --tag kind=trial\n"
    )


def test_diff_shows_only_what_differs(recorded, capsys) -> None:
    uri, r = recorded
    code, out, _ = cli(capsys, "diff", "--uri", uri, r["relu0"].run_id, r["lr"].run_id)
    assert code == 0
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()[2:]}
    assert rows["optimizer.lr"] == ["0.1", "0.05"]  # from the resolved configs
    a, b = r["relu0"].test_accuracy, r["lr"].test_accuracy
    assert rows["test_accuracy"] == [f"{a:.6g}", f"{b:.6g}", f"{b - a:+.6g}"]
    assert "model.hidden" not in rows and "trainer.seed" not in rows  # the same in both
    assert "data.digest" not in rows and "code_version" not in rows
    assert "A: relu train=1000 test=200 ep=2 seed0" in out and "B: relu train=1000 " in out
    _, out, _ = cli(capsys, "diff", "--uri", uri, r["relu0"].run_id, r["relu1"].run_id)
    assert "trainer.seed" in out and "optimizer.lr" not in out
    code, _, err = cli(capsys, "diff", "--uri", uri, r["relu0"].run_id, "nosuchrun")
    assert code == 1 and err.startswith("error: no run 'nosuchrun' in sqlite:///")


def test_diff_of_two_groups_compares_their_means(recorded, capsys) -> None:
    """A group's parent run stands for its runs: configs with the seeds joined, metrics as
    mean ± sd, B - A of the means; a run and a group compare too."""
    from mlflow import MlflowClient

    uri, r = recorded
    client = MlflowClient(uri)
    experiment_id = client.get_run(r["relu0"].run_id).info.experiment_id
    group = client.create_run(experiment_id, run_name="relu", tags={"kind": "group"}).info.run_id
    for key in ("relu0", "relu1"):
        client.set_tag(r[key].run_id, "mlflow.parentRunId", group)
    client.set_terminated(group)
    code, out, _ = cli(capsys, "diff", "--uri", uri, group, r["lr"].run_id)
    assert code == 0, out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()[2:]}
    assert "A: relu (2 runs)" in out
    assert rows["trainer.seed"] == ["0", "1", "0"]  # the group's seeds, joined
    assert rows["optimizer.lr"] == ["0.1", "0.05"]
    accuracies = pd.Series([r["relu0"].test_accuracy, r["relu1"].test_accuracy])
    b = r["lr"].test_accuracy
    mean, sd = accuracies.mean(), accuracies.std()
    assert rows["test_accuracy"] == [
        f"{mean:.6g}",
        "±",
        f"{sd:.2g}",
        f"{b:.6g}",
        f"{b - mean:+.6g}",
    ]
    code, _, err = cli(capsys, "diff", "--uri", uri, group, group)
    assert code == 0
    empty = client.create_run(experiment_id, run_name="empty").info.run_id
    code, _, err = cli(capsys, "diff", "--uri", uri, empty, group)
    assert code == 1 and "neither a training run nor the parent of finished ones" in err
