"""A run's record kept on disk when its store goes away mid-run, and the upload for later.

    python -m pipeline.tracking.outbox [FOLDER ...] [--uri URI]   # or: make upload

Training never waits on a store that has gone: the tracker switches to an ``Outbox`` in
``<store folder>/outbox/<run id>/`` (``record.json`` with the metrics, tags and final status
not yet sent, ``artifacts/``, and what logging the MLflow model needs), finishes, and the
command exits non-zero saying where the record is. Uploading sends it to the same run (with
its model) and ends it; the folder is removed only once everything is in the store, so an
interrupted upload can simply be run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import resolve_path
from pipeline.tracking import store


def folder(uri: str | None, configured: str | None) -> Path:
    """``tracking.outbox``, else ``outbox/`` beside a SQLite store or in ``<repo>/mlruns/``."""
    return resolve_path(configured) if configured else store.local_folder(uri) / "outbox"


class Outbox:
    def __init__(self, run_id: str, uri: str | None, configured: str | None = None) -> None:
        self.folder = folder(uri, configured) / run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.record: dict[str, Any] = {
            "run_id": run_id,
            "uri": store.mask(store.tracking_uri(uri)),  # the password stays out of the file
            "metrics": [],
            "tags": {},
            "status": None,
            "end_time": None,
        }
        self._save()

    def _save(self) -> None:
        tmp = self.folder / "record.json.tmp"
        tmp.write_text(json.dumps(self.record))
        os.replace(tmp, self.folder / "record.json")  # never a half-written record

    def metrics(self, metrics: list[Any]) -> None:
        self.record["metrics"] += [[m.key, m.value, m.timestamp, m.step] for m in metrics]
        self._save()

    def tags(self, tags: dict[str, str]) -> None:
        self.record["tags"].update(tags)
        self._save()

    def artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        target = self.folder / "artifacts" / (artifact_path or "")
        shutil.copytree(folder, target, dirs_exist_ok=True)

    def model(self, name: str, example: Any, preprocessing: dict) -> None:
        """What logging the MLflow model needs besides model.npz: the run's name (the
        model's), an input example (for its signature) and the preprocessing."""
        np.save(self.folder / "model-example.npy", example)
        self.record["model"] = {"name": name, "preprocessing": preprocessing}
        self._save()

    def end(self, status: str, end_time: int) -> None:
        self.record.update(status=status, end_time=end_time)
        self._save()


def upload(folder: Path, uri: str | None = None) -> str:
    """Send one kept record to its run and end the run; return the run id."""
    from mlflow.entities import Metric, RunTag

    record = json.loads((folder / "record.json").read_text())
    target = uri or os.environ.get("MLFLOW_TRACKING_URI") or record["uri"]
    if "***" in target:
        raise store.StoreError(
            f"{folder}: the store's password is not kept on disk; pass --uri or set "
            "MLFLOW_TRACKING_URI"
        )
    client = store.client(target)
    run_id = record["run_id"]
    metrics = [Metric(*m) for m in record["metrics"]]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    if record["tags"]:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in record["tags"].items()])
    if (folder / "artifacts").is_dir():
        client.log_artifacts(run_id, str(folder / "artifacts"))
    if record.get("model") is not None:
        from pipeline import serving

        example = np.load(folder / "model-example.npy")
        model = record["model"]
        uri = serving.log(
            client, run_id, model["name"], folder / "artifacts", example, model["preprocessing"]
        )
        client.set_tag(run_id, "model_uri", uri)
    if record["status"]:
        client.set_terminated(run_id, record["status"], record["end_time"])
    shutil.rmtree(folder)
    return run_id


def pending(box: Path) -> list[Path]:
    return sorted(p for p in box.iterdir() if (p / "record.json").is_file()) if box.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="default: every kept record")
    parser.add_argument("--uri", help="the store to send to (default: the record's own)")
    parser.add_argument("--outbox", help="where records were kept (default: as in training)")
    args = parser.parse_args(argv)
    folders = args.folders or pending(folder(args.uri, args.outbox))
    if not folders:
        print("nothing to upload")
        return 0
    for record in folders:
        try:
            print(f"uploaded {record} to run {upload(record, args.uri)}")
        except Exception as err:  # one line, whatever the store said
            print(f"error: {record}: {store.mask(str(err).splitlines()[0])}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
