"""How the numbers were made, and where each one is recorded (MLflow run ids, the UI)."""

from __future__ import annotations

import time

import pandas as pd

from pipeline.data import digest
from pipeline.tracking.provenance import provenance
from pipeline.tracking.store import mask, tracking_uri
from sweeps.report.context import Context
from sweeps.report.document import Section


def section(ctx: Context) -> Section:
    p = provenance()
    cfg = ctx.plan.first
    uri = tracking_uri(cfg.tracking.uri)
    ui = uri if uri.startswith("http") else "`make ui` (MLflow UI on http://127.0.0.1:5000)"
    text = [
        f"Generated {time.strftime('%Y-%m-%d %H:%M')} from commit {p['git.commit'][:12]}"
        f"{' (with uncommitted changes)' if p['git.dirty'] == 'true' else ''}, core code "
        f"version {p['code_version']}, NumPy {p['version.numpy']}, MLflow {p['version.mlflow']}, "
        f"Optuna {p['version.optuna']}.",
        f"Data: {cfg.data.name} ({cfg.data.dir}), digest {digest(cfg.data)[:16]}; "
        f"{cfg.data.val_fraction:.0%} of the training images for validation (split seed "
        f"{cfg.data.split_seed}), normalisation {cfg.data.normalize}, {cfg.trainer.dtype}.",
        f"Seeds {', '.join(map(str, ctx.seeds))} for each experiment at the original's "
        f"hyperparameters; {ctx.reused} of {len(ctx.plan.experiments)} runs were reused from "
        "MLflow, the others trained now.",
        "Overrides on top of the presets: " + (mask(" ".join(ctx.plan.base)) or "none") + ".",
        f"Every number comes from an MLflow run in experiment '{cfg.tracking.experiment}' of "
        f"{mask(uri)}; browse them with {ui}.",
    ]
    ids = ctx.runs.pivot(index="group", columns="seed", values="run_id").map(ctx.link)
    ids.columns = [f"seed {s}" for s in ids.columns]
    tables = [
        (
            "MLflow run ids of the experiments",
            ids.reset_index().rename(columns={"group": "experiment"}),
        )
    ]
    studies = [("gradient check", "-", ctx.gradcheck_run_id)]
    studies += [(f"forensics {f.preset}", f.s.name, f.parent_run_id) for f in ctx.findings]
    if ctx.tuning is not None:
        studies.append(("tuning", ctx.tuning.s.name, ctx.tuning.parent_run_id))
    if ctx.joint is not None:
        studies.append(("one implementation for every row", "-", ctx.joint.parent_run_id))
    rows = [(what, name, ctx.link(run) if run else None) for what, name, run in studies]
    tables.append(
        (
            "Studies and checks (optuna-dashboard shows the studies: `make dashboard`)",
            pd.DataFrame(rows, columns=["what", "study", "MLflow run"]),
        )
    )
    return Section("Setup", text, tables)
