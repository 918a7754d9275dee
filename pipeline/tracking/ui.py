"""``make ui``: the MLflow UI over the project's store, as light as it goes, with the links that
open it where a reader wants to be.

    python -m pipeline.tracking.ui [--port 5000] [--uri URI]

MLflow 3.17's UI opens in its GenAI mode in a new browser: the sidebar choice lives in the
browser (localStorage ``mlflow.workflowType_v1``) and no server option or experiment tag sets
it. A link with ``?workflowType=machine_learning`` opens the model-training view at once, so
the links printed here all carry it. Each link opens a saved view kept on the experiment
(``VIEWS``): the report's six experiments as rows with their mean test accuracy, loss and
stopped epoch; every run with those six groups on the first page; the six side by side in
charts (mean and range over seeds, curves first, accuracy in percent).
The server runs one worker without MLflow's GenAI job runner (two processes instead of 15).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any

from pipeline.tracking import store

LOCAL_UI = "http://127.0.0.1:5000"  # make ui's default
COMPARED = ("test_accuracy", "test_loss", "stopped_epoch")  # what a reader compares


def _grouped(tag: str) -> dict[str, Any]:
    """Runs grouped by a tag's value, each group's row (and chart bar) the mean of its runs."""
    return {
        "aggregateFunction": "average",
        "groupByKeys": [{"mode": "tag", "groupByData": tag}],
    }


def _charts() -> dict[str, Any]:
    """The chart view's cards, curves first: MLflow orders a new view's charts by name (best_*
    bars before the losses) and writes bars with two decimals (relu and sigmoid both 0.98),
    so the accuracy is shown in percent. Metrics not listed follow, as MLflow adds them."""

    def card(kind: str, *metrics: str) -> dict[str, Any]:
        return {
            "uuid": f"report-{'-'.join(metrics)}",
            "type": kind,
            "metricKey": metrics[0],
            "metricSectionId": "model",
            "isGenerated": True,
            "deleted": False,
            "runsCountToCompare": 10,
        } | ({"selectedMetricKeys": list(metrics), "xAxisKey": "step"} if kind == "LINE" else {})

    sections = [  # "reordered": MLflow appends the other metrics instead of sorting them in
        {"uuid": "model", "name": "Model metrics", "display": True, "isReordered": True},
        {"uuid": "system", "name": "System metrics", "display": True, "isReordered": True},
    ]
    cards = [
        card("LINE", "val_loss", "train_loss"),
        card("LINE", "val_accuracy", "train_accuracy"),
        card("BAR", "test_accuracy_pct"),
        card("BAR", "test_loss"),
        card("BAR", "stopped_epoch"),
    ]
    return {"compareRunCharts": cards, "compareRunSections": sections, "isAccordionReordered": True}


# Saved views (experiment tags ``mlflow.sharedViewState.<key>``), opened by ``make ui``'s links.
# The report's experiment runs are grouped by their ``preset`` tag, which their group's parent
# run lacks: MLflow fetches a shown run's parent, and by ``report.experiment`` (which parents
# carry) would count it as a member of the group, and a fourth bar of the average. Parents
# land in "Additional runs", collapsed at the end. (A view's ``runsExpanded`` is not applied
# by MLflow 3.17, so a report's tree cannot be opened expanded: its groups are shown instead.)
REPORT_RUNS = "tags.kind = 'report-run'"
VIEWS: dict[str, tuple[str, dict[str, Any]]] = {
    "report": (
        "The report's experiments, mean over seeds",
        {
            "searchFilter": REPORT_RUNS,
            "selectedColumns": [f"metrics.`{m}`" for m in COMPARED],
            "groupBy": _grouped("preset"),
            "groupsExpanded": {},
        },
    ),
    # every run, oldest first: the report's experiments are what it trains first; newest first
    # the first page (100 runs) held a study's trials and no group. Grouped, the six groups
    # are rows of the first page, and everything else follows under "Additional runs", open
    # (MLflow names that group after the grouping key; before any report it holds every run).
    "all": (
        "Every run, the report's experiments first",
        {
            "searchFilter": "",
            "orderByKey": "attributes.start_time",
            "orderByAsc": True,
            "selectedColumns": [f"metrics.`{m}`" for m in COMPARED],
            "groupBy": _grouped("report.experiment"),
            "groupsExpanded": {"tag.report.experiment": True},
        },
    ),
    "charts": (
        "The report's experiments side by side",
        {"searchFilter": REPORT_RUNS, "groupBy": _grouped("preset"), "groupsExpanded": {}}
        | _charts(),
    ),
}


def experiment_url(uri: str | None, experiment_id: str) -> str:
    """An experiment's page in the MLflow UI: the tracking server's own, else ``make ui``'s."""
    uri = store.tracking_uri(uri)
    base = store.mask(uri).rstrip("/") if uri.startswith("http") else LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}"


def ensure_views(client: Any, experiment_id: str) -> None:
    """The saved views, kept on the experiment (rewritten only when they changed)."""
    tags = client.get_experiment(experiment_id).tags
    for key, (name, view) in VIEWS.items():
        tag = f"mlflow.sharedViewState.{key}"
        state = json.dumps(view)
        if tag in tags and json.loads(tags[tag]).get("state") == state:
            continue
        now = int(time.time() * 1000)
        envelope = {"name": name, "createdAt": now, "updatedAt": now, "state": state}
        client.set_experiment_tag(experiment_id, tag, json.dumps(envelope))


def links(base: str, experiment_id: str) -> dict[str, str]:
    """The report's experiments as a table, every run, and the experiments in charts."""
    runs = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return {
        "runs": f"{runs}&viewStateShareKey=report",
        "all runs": f"{runs}&viewStateShareKey=all",
        "grouped charts": f"{runs}&compareRunsMode=CHART&viewStateShareKey=charts",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--uri", default=None, help="tracking store (default: the project's)")
    parser.add_argument("--experiment", default="mnist-mlp")
    args = parser.parse_args(argv)
    try:
        client, experiment_id = store.open_experiment(args.uri, args.experiment)
    except store.StoreError as err:
        sys.exit(f"error: {err}")
    ensure_views(client, experiment_id)
    uri = store.tracking_uri(args.uri)
    base = f"http://{args.host}:{args.port}"
    for what, url in links(base, experiment_id).items():
        print(f"{what:>15}: {url}")
    print("The first and last show the report's experiments (make reproduce-report); before a")
    print("report, 'all runs' lists every run.")
    print(
        "If the sidebar ever shows GenAI, click 'Model training' once: the browser keeps it.",
        flush=True,
    )
    command = [
        shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow",
        "server",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        "1",
        "--backend-store-uri",
        uri,
    ]
    if store.sqlite_path(uri):
        command += ["--artifacts-destination", str(store.local_folder(uri) / "artifacts")]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    os.execvpe(command[0], command, env)  # this process becomes the server: nothing left over


if __name__ == "__main__":
    main()
