"""``make ui``: the MLflow UI over the project's store, as light as it goes, with the links that
open it where a reader wants to be.

    python -m pipeline.tracking.ui [--port 5000] [--uri URI]

MLflow 3.17's UI opens in its GenAI mode in a new browser: the sidebar choice lives in the
browser (localStorage ``mlflow.workflowType_v1``) and no server option or experiment tag sets
it. A link with ``?workflowType=machine_learning`` opens the model-training view at once, so
the links printed here all carry it. The experiment also holds a saved view (an experiment tag
``mlflow.sharedViewState.report``) that groups the report's runs by experiment; the second
link opens it in chart mode: the six experiments side by side, mean and range over seeds.
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
from urllib.parse import quote

from pipeline.tracking import store

LOCAL_UI = "http://127.0.0.1:5000"  # make ui's default
VIEW = "report"
NO_TRIALS = "tags.kind != 'trial'"
GROUPED = {  # the report's experiment runs, grouped by experiment: charts average the seeds
    "searchFilter": "tags.kind = 'report-run'",
    "groupBy": {
        "aggregateFunction": "average",
        "groupByKeys": [{"mode": "tag", "groupByData": "report.experiment"}],
    },
    "groupsExpanded": {},
}


def experiment_url(uri: str | None, experiment_id: str) -> str:
    """An experiment's page in the MLflow UI: the tracking server's own, else ``make ui``'s."""
    uri = store.tracking_uri(uri)
    base = store.mask(uri).rstrip("/") if uri.startswith("http") else LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}"


def ensure_view(client: Any, experiment_id: str) -> None:
    """The saved view "The report's experiments, grouped", kept on the experiment."""
    key = f"mlflow.sharedViewState.{VIEW}"
    state = json.dumps(GROUPED)
    tags = client.get_experiment(experiment_id).tags
    if key in tags and json.loads(tags[key]).get("state") == state:
        return
    now = int(time.time() * 1000)
    envelope = {"name": "The report's experiments, grouped", "createdAt": now, "updatedAt": now}
    client.set_experiment_tag(experiment_id, key, json.dumps({**envelope, "state": state}))


def links(base: str, experiment_id: str) -> dict[str, str]:
    """The runs without sweep trials (hundreds of them would push the report's tree past the
    table's first page; each trial sits under its study), every run, and the grouped charts."""
    runs = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return {
        "runs": f"{runs}&searchFilter={quote(NO_TRIALS)}",
        "all runs": f"{runs}&searchFilter=",  # explicit: the UI would restore the last filter
        "grouped charts": f"{runs}&compareRunsMode=CHART&viewStateShareKey={VIEW}",
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
    ensure_view(client, experiment_id)
    uri = store.tracking_uri(args.uri)
    base = f"http://{args.host}:{args.port}"
    for what, url in links(base, experiment_id).items():
        print(f"{what:>15}: {url}")
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
