"""``make reproduce-report``: the original's experiments over seeds, why ours differ, what tuning
gives; written as ``reports/report.md``, a self-contained ``report.html`` and CSVs.

    python -m sweeps.report [report.seeds=5] [report.force=true] [any training key]

Everything is checked first (``plan``), then gathered (``context``: reused or trained), then
written section by section (``sections``) into a new folder whose files replace the previous
report's only once it is complete (``publish``: nothing the report did not write is touched).
The report is one MLflow run, parent of its experiments' group runs and its studies; a report
whose inputs are all unchanged adds no run.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipeline import cli, train
from pipeline.config import CONF_DIR, ROOT
from pipeline.tracking import store
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.runs import find_finished
from sweeps import launchers
from sweeps.report import document, plan, publish
from sweeps.report.context import Context, gather
from sweeps.report.sections import SECTIONS
from verify import COUNT_LINE, Verdict, verify

log = logging.getLogger(__name__)

TITLE = "Multi-layer neural network for MNIST: the report reproduced and explained"
REPORT_KEYS = {"report", "launcher", "hydra"}


def write(ctx: Context, folder: Path) -> Verdict:
    """The document and a CSV of every table behind it. The written Markdown is handed to the
    independent verifier (``verify``), and its count goes into the setup section."""
    sections = [s for s in (make(ctx) for make in SECTIONS) if s is not None]
    document.write_markdown(TITLE, sections, folder)
    verdict = verify(folder / "report.md", store.tracking_uri(ctx.plan.first.tracking.uri))
    sections[-1].text.append(COUNT_LINE.format(n=verdict.checked, bad=len(verdict.disagreements)))
    document.write_markdown(TITLE, sections, folder)
    document.write_html(TITLE, sections, folder)
    ctx.runs.to_csv(folder / "runs.csv", index=False)
    ctx.comparison.to_csv(folder / "comparison.csv", index=False)
    ctx.gradcheck.to_csv(folder / "gradcheck.csv", index=False)
    for f in ctx.findings:
        f.trials.drop(columns=["params"]).to_csv(
            folder / f"forensics_{f.preset}_trials.csv", index=False
        )
        f.ranking.to_csv(folder / f"forensics_{f.preset}.csv", index=False)
    if ctx.joint is not None:
        ctx.joint.screened.to_csv(folder / "joint_implementations.csv", index=False)
        ctx.joint.over_seeds.to_csv(folder / "joint.csv", index=False)
    for f in ctx.findings:
        f.identified.to_csv(folder / f"forensics_{f.preset}_identified.csv", index=False)
    if ctx.tuning is not None:
        ctx.tuning.trials.to_csv(folder / "tuning_trials.csv", index=False)
        ctx.tuning.best.to_csv(folder / "tuning.csv", index=False)
        ctx.tuning.importances.to_csv(folder / "tuning_importances.csv", index=False)
    return verdict


def report_code() -> str:
    """Hash of the sweep and report sources: what the report's text is made by."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "sweeps").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def record(ctx: Context, folder: Path) -> str:
    """The report's MLflow run: the one already holding these very inputs, or a new one that
    holds the files and adopts the experiments' group runs and the studies as children."""
    cfg = ctx.plan.first
    used = sorted(ctx.runs["run_id"]) + [f.parent_run_id or "" for f in ctx.findings]
    used += [ctx.tuning.parent_run_id or ""] if ctx.tuning else []
    used += [ctx.joint.parent_run_id or ""] if ctx.joint else []
    identity = hashlib.sha256(" ".join([*used, report_code(), str(ctx.plan.r)]).encode())
    tags = {"kind": "report", "report.identity": identity.hexdigest()[:16]}
    found = find_finished(cfg.tracking.uri, cfg.tracking.experiment, tags)
    if found:
        log.info(f"the report is unchanged since MLflow run {found}: no new run")
        return found
    parent = ParentRun(
        cfg.tracking.uri,
        cfg.tracking.experiment,
        "report",
        {**tags, "report.overrides": store.mask(" ".join(ctx.plan.base))},
        export=False,
    )
    client = parent.client
    children = set(ctx.runs["parent"].dropna()) | {f.parent_run_id for f in ctx.findings}
    children |= {ctx.tuning.parent_run_id} if ctx.tuning else set()
    children |= {ctx.joint.parent_run_id} if ctx.joint else set()
    for child in children - {None, ""}:
        client.set_tag(child, "mlflow.parentRunId", parent.run_id)
    client.log_artifacts(parent.run_id, str(folder))
    parent.end("FAILED" if ctx.errors else "FINISHED")
    return parent.run_id


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="report")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    start = time.monotonic()

    def body() -> None:
        base = train.training_overrides(HydraConfig.get().overrides.task, REPORT_KEYS)
        launchers.configure(cfg.launcher)
        p = plan.plan(cfg, base)  # every setting checked, every config composed, first
        staging = publish.staging(p.out)
        try:
            (staging / "figures").mkdir()
            ctx = gather(p, staging / "figures", None)
            verdict = write(ctx, staging)
            run_id = record(ctx, staging) if p.first.tracking.enabled else None
            publish.swap_in(staging, p.out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info(
            f"report: {p.out / 'report.md'} and {p.out / 'report.html'} "
            f"({time.monotonic() - start:.0f}s in all; MLflow run {run_id})"
        )
        log.info(str(verdict))
        problems = []
        if ctx.errors:
            failed = [f"{k} seed {s}: {e}" for (k, s), e in sorted(ctx.errors.items())]
            problems.append(
                f"{len(failed)} run(s) failed, the report shows what finished: " + "; ".join(failed)
            )
        if verdict.disagreements:
            problems.append(
                f"the report disagrees with its records in {len(verdict.disagreements)} place(s), "
                "listed above: it is written, but do not trust those numbers"
            )
        if problems:
            raise cli.WorkFailed("; and ".join(problems))

    cli.command(body, "run the same command again to continue from the finished runs")


if __name__ == "__main__":
    main()
