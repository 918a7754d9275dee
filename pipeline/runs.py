"""Compare runs from the terminal, as ``dvc exp show`` and ``dvc exp diff`` do for DVC.

    python -m pipeline.runs list [--preset relu] [--tag KEY=VALUE ...] [--each] [--csv]
    python -m pipeline.runs diff RUN_A RUN_B     (runs, or groups: their parent runs)

``list`` shows an experiment's finished training runs (sweep trials only with ``--tag
kind=trial``), one row per configuration: the parameters in which the rows differ, how many seeds
it has and their final metrics as mean ± sd; ``--each`` gives one row per run, with its id.
``diff`` shows what differs between two runs: the resolved config each ran with, the core's code
version, the git commit, the data digest, and the final metrics (with B - A). Either may be a
group's parent run (a report's experiment, a multirun, a study): its finished runs' configs
(the seeds joined), and their metrics as mean ± sd, B - A of the means. The store is the
project's (``$MLFLOW_TRACKING_URI``, else ``mlruns/mlflow.db``) unless ``--uri`` names another.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd
from omegaconf import OmegaConf
from tabulate import tabulate

from pipeline.config import flatten
from pipeline.tracking import store

SHOWN = ("test_accuracy", "test_loss", "stopped_epoch")  # what ``list`` shows of each run
FINAL = (*SHOWN, "best_epoch", "best_val_loss", "best_val_accuracy")  # and ``diff``
PROVENANCE = ("code_version", "git.commit", "git.dirty", "data.digest")
SEED = "trainer.seed"


class RunsError(RuntimeError):
    """A run or an experiment that is not there, a malformed filter; one line."""


def search(client: Any, experiment: str, preset: str | None, tags: dict[str, str]) -> list[Any]:
    """The experiment's FINISHED training runs carrying ``tags`` (all pages), oldest first."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise RunsError(f"no experiment {experiment!r} in {store.mask(client.tracking_uri)}")
    tags = {**({"preset": preset} if preset else {}), **tags}
    terms = ["attributes.status = 'FINISHED'", *(f"tags.`{k}` = '{v}'" for k, v in tags.items())]
    if "kind" not in tags:  # hundreds of trials would bury the runs; each study has its own
        terms.append("tags.kind != 'trial'")
    runs, token = [], None
    while True:
        page = client.search_runs(
            [found.experiment_id],
            " and ".join(terms),
            max_results=1000,
            order_by=["attributes.start_time ASC"],
            page_token=token,
        )
        runs += [r for r in page if "config_hash" in r.data.tags]  # parents have none
        token = page.token
        if not token:
            return runs


def frame(runs: list[Any]) -> tuple[pd.DataFrame, list[str]]:
    """One row per run (preset, parameters, code version, final metrics), and the columns in
    which the runs differ."""
    df = pd.DataFrame(
        [
            {
                "run_id": r.info.run_id,
                "name": r.info.run_name,
                "preset": r.data.tags.get("preset", "-"),
                **r.data.params,
                "code_version": r.data.tags.get("code_version", "-"),
                **{m: r.data.metrics.get(m) for m in SHOWN},
            }
            for r in runs
        ]
    )
    settings = [c for c in df.columns if c not in ("run_id", "name", "preset", *SHOWN)]
    df[settings] = df[settings].fillna("-")  # a key that does not apply (softmax's activation)
    return df, [c for c in settings if df[c].nunique() > 1]


def mean_sd(values: pd.Series, digits: int) -> str:
    """``0.9712 ± 0.0011`` over seeds (sample sd), one value alone, ``-`` for none."""
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


DIGITS = {"test_accuracy": 4, "test_loss": 4, "stopped_epoch": 1}


def grouped(df: pd.DataFrame, differ: list[str], as_csv: bool) -> pd.DataFrame:
    """One row per configuration: the runs that differ only in their seed."""
    keys = ["preset", *(c for c in differ if c != SEED)]
    rows = []
    for values, group in df.groupby(keys, sort=False):
        row = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        row["runs"] = len(group)
        row["seeds"] = " ".join(sorted(group[SEED].astype(str), key=int))
        for m in SHOWN:
            if as_csv:
                row[f"{m}_mean"], row[f"{m}_sd"] = group[m].mean(), group[m].std()
            else:
                row[m] = mean_sd(group[m], DIGITS[m])
        row["_order"] = group["test_accuracy"].mean()
        rows.append(row)
    out = pd.DataFrame(rows).sort_values(["preset", "_order"], ascending=[True, False])
    return out.drop(columns="_order")


def list_runs(args: argparse.Namespace) -> None:
    tags = dict(parse_tag(t) for t in args.tag)
    runs = search(store.client(args.uri), args.experiment, args.preset, tags)
    if not runs:
        print("no finished runs match", file=sys.stderr)
        return
    df, differ = frame(runs)
    if args.each:
        table = df[["run_id", "name", "preset", *differ, *SHOWN]].copy()
        if not args.csv:
            for m in SHOWN:
                table[m] = [mean_sd(pd.Series([v]), DIGITS[m]) for v in table[m]]
    else:
        table = grouped(df, differ, args.csv)
    if args.csv:
        table.to_csv(sys.stdout, index=False)
    else:  # parameters as logged (numparse would print lr=1e-05 as 0.0000)
        print(tabulate(table, headers="keys", showindex=False, disable_numparse=True))


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RunsError(f"--tag {text!r} is invalid: expected KEY=VALUE, e.g. --tag kind=trial")
    return key, value


def members(client: Any, run_id: str) -> tuple[Any, list[Any]]:
    """A run and the training runs it stands for: itself, or, for a group's parent run (a
    report's experiment, a multirun, a study), its FINISHED children."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise RunsError(f"no run {run_id!r} in {store.mask(client.tracking_uri)}") from None
    if "config_hash" in run.data.tags and run.data.tags.get("kind") != "group":
        return run, [run]
    children = client.search_runs(
        [run.info.experiment_id],
        f"tags.mlflow.parentRunId = '{run_id}' and attributes.status = 'FINISHED'",
        max_results=1000,
        order_by=["attributes.start_time ASC"],
    )
    children = [c for c in children if "config_hash" in c.data.tags]
    if not children:
        raise RunsError(f"run {run_id!r} is neither a training run nor the parent of finished ones")
    return run, children


def config_of(client: Any, run: Any) -> dict[str, str]:
    """A run's resolved config (its config.yaml, read as written, so a run of older code with
    other keys still compares); a pruned trial keeps no artifacts: its parameters."""
    from mlflow.exceptions import MlflowException

    from pipeline.tracking.runs import run_artifact

    try:
        path = run_artifact(run.info.run_id, "config.yaml", client.tracking_uri)
        config = flatten(OmegaConf.to_container(OmegaConf.load(path)))
    except (MlflowException, OSError):
        config = dict(run.data.params)
    return {k: str(v) for k, v in config.items()}


def described(client: Any, run_id: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """A run's (or a group's) name, and its resolved config, provenance and final metrics. A
    group's values are those of its runs: one value where they agree, the seeds' values
    joined where they do not, and each metric as the list of its runs' values."""
    run, runs = members(client, run_id)
    configs = [config_of(client, r) for r in runs]

    def agreed(values: list[str]) -> str:
        return " ".join(dict.fromkeys(values))  # in run order, each once

    keys = sorted({k for c in configs for k in c})
    provenance = {k: agreed([r.data.tags.get(k, "-") for r in runs]) for k in PROVENANCE}
    metrics = {m: [r.data.metrics[m] for r in runs if m in r.data.metrics] for m in FINAL}
    name = run.info.run_name if len(runs) == 1 else f"{run.info.run_name} ({len(runs)} runs)"
    return name, {
        "config": {k: agreed([c.get(k, "-") for c in configs]) for k in keys},
        "provenance": provenance,
        "metrics": {m: v for m, v in metrics.items() if v},
    }


def shown(values: list[float]) -> str:
    """One run's value, or a group's mean ± sd over its runs."""
    if len(values) == 1:
        return f"{values[0]:.6g}"
    series = pd.Series(values)
    return f"{series.mean():.6g} ± {series.std():.2g}"


def diff_rows(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> list[list[Any]]:
    """[section, key, A, B, B - A] for every value that differs (B - A of the means)."""
    rows = []
    for section in ("config", "provenance", "metrics"):
        x, y = a[section], b[section]
        for key in sorted(x.keys() | y.keys()):
            va, vb = x.get(key, "-"), y.get(key, "-")
            if va == vb:
                continue
            if isinstance(va, list) and isinstance(vb, list):
                change = sum(vb) / len(vb) - sum(va) / len(va)
                rows.append([section, key, shown(va), shown(vb), f"{change:+.6g}"])
            else:
                va, vb = (shown(v) if isinstance(v, list) else v for v in (va, vb))
                rows.append([section, key, va, vb, ""])
    return rows


def diff_runs(args: argparse.Namespace) -> None:
    client = store.client(args.uri)
    (name_a, a), (name_b, b) = described(client, args.run_a), described(client, args.run_b)
    rows = diff_rows(a, b)
    if not rows:
        print("the two do not differ in config, provenance or final metrics")
        return
    headers = ["", "", f"A: {name_a}", f"B: {name_b}", "B - A"]
    print(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.runs",
        description="Compare MLflow runs: list them grouped over seeds, or diff two of them.",
    )
    uri = argparse.ArgumentParser(add_help=False)
    uri.add_argument("--uri", default=None, help="tracking URI (default: the project's store)")
    commands = p.add_subparsers(dest="command", required=True)
    ls = commands.add_parser("list", parents=[uri], help="an experiment's runs, grouped over seeds")
    ls.add_argument("--experiment", default="mnist-mlp", help="default: mnist-mlp")
    ls.add_argument("--preset", help="only this preset's runs (relu, l2, ...)")
    ls.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="only runs with this tag"
    )
    ls.add_argument("--each", action="store_true", help="one row per run, with its id")
    ls.add_argument("--csv", action="store_true", help="CSV on stdout (mean and sd as numbers)")
    ls.set_defaults(func=list_runs)
    df = commands.add_parser(
        "diff", parents=[uri], help="what differs between two runs (or two groups of seeds)"
    )
    df.add_argument(
        "run_a",
        metavar="RUN_A",
        help="a run id (list --each shows them), or a group's parent run: its runs' mean",
    )
    df.add_argument("run_b", metavar="RUN_B")
    df.set_defaults(func=diff_runs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except (RunsError, store.StoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
