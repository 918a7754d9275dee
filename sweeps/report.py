"""``make reproduce-report``: the report's experiments, a compact sweep, tables and figures.

    python -m sweeps.report [report.seeds=5] [report.force=true] [any training key]

Runs the gradient check, every report experiment over several seeds (independent runs in
parallel, one BLAS thread each), and a compact Optuna sweep; then writes ``reports/report.md``,
a self-contained ``reports/report.html`` and a CSV of every number, and logs them to one
MLflow "report" run that links every run it used. A finished MLflow run with the same config
hash, data digest and code version is reused instead of retrained, so a second invocation,
or one after Ctrl-C, only does what is missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline import cli, gradcheck, train
from pipeline.artifacts import load_model
from pipeline.config import CONF_DIR, ConfigError, TrainConfig, resolve_path, to_config
from pipeline.data import digest as data_digest
from pipeline.tracking import store
from pipeline.tracking.parents import ParentRun
from pipeline.tracking.provenance import code_version, provenance
from pipeline.tracking.runs import find_finished, run_artifact, set_tags
from sweeps import render, settings, summary
from sweeps import study as st

REPORT_KEYS = {"report", "hydra"}
ACTIVATION_PRESETS = {"sigmoid": "sigmoid", "tanh": "momentum", "relu": "relu"}
REGULARIZER_PRESETS = {"none": "momentum", "l1": "l1", "l2": "l2"}


def job_overrides(base: list[str], preset: str, seed: int) -> list[str]:
    """One report run: a preset and a seed, under the command line's training overrides."""
    return [*base, f"experiment={preset}", f"trainer.seed={seed}"]


def job_config(base: list[str], preset: str, seed: int) -> TrainConfig:
    return to_config(train.compose(job_overrides(base, preset, seed)))


def identity(cfg: TrainConfig) -> dict[str, str]:
    """What makes two runs the same computation: config, data and the core's code."""
    return {
        "config_hash": cfg.training_hash(),
        "data.digest": data_digest(cfg.data),
        "code_version": code_version(),
    }


def _train_job(overrides: list[str], threads: int | None, parent_run_id: str | None) -> str:
    """Runs in a worker process: one training run, recorded in MLflow; returns its run id."""
    cfg = to_config(train.compose(overrides))
    cfg.trainer.threads = threads
    cfg.trainer.progress = False
    label = f"[{cfg.preset} seed {cfg.trainer.seed}]"

    def every_tenth(epoch: int, m: dict[str, float]) -> None:
        if epoch % 10 == 0:
            print(
                f"  {label} epoch {epoch} val loss {m['val_loss']:.4f} "
                f"accuracy {m['val_accuracy']:.2%}",
                flush=True,
            )

    with cli.job():
        result = train.run(cfg, [every_tenth], {"kind": "report-run"}, parent_run_id)
    return result.run_id


def run_jobs(
    jobs: dict[tuple[str, int], list[str]], workers: int, parent_run_id: str
) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], str]]:
    """Train the jobs, ``workers`` at a time; return run ids and errors by (preset, seed)."""
    done: dict[tuple[str, int], str] = {}
    errors: dict[tuple[str, int], str] = {}
    if not jobs:
        return done, errors
    threads = 1 if workers > 1 else None
    start = time.monotonic()
    with ProcessPoolExecutor(
        workers,
        mp_context=get_context("spawn"),
        initializer=cli.pool_worker,
        initargs=(os.getpid(),),
    ) as pool:
        pending: dict[Future, tuple[str, int]] = {
            pool.submit(_train_job, overrides, threads, parent_run_id): key
            for key, overrides in jobs.items()
        }
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    key = pending.pop(future)
                    try:
                        done[key] = future.result()
                        status = "done"
                    except Exception as err:
                        errors[key] = f"{type(err).__name__}: {err}"
                        status = f"FAILED ({errors[key]})"
                    elapsed = time.monotonic() - start
                    finished_n = len(done) + len(errors)
                    left = elapsed / finished_n * len(pending)
                    print(
                        f"[{finished_n}/{len(jobs)}] {key[0]} seed {key[1]} {status}  "
                        f"{elapsed:.0f}s elapsed, ~{left:.0f}s left",
                        flush=True,
                    )
        except KeyboardInterrupt:  # Ctrl-C reached the workers too; SIGTERM only us
            pool.shutdown(wait=False, cancel_futures=True)
            for process in list(pool._processes.values()):  # no public handle on them
                process.terminate()  # each ends its run KILLED
            raise
    return done, errors


def collect(
    run_ids: dict[tuple[str, int], str], uri: str | None
) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame], dict[tuple[str, int], np.ndarray]]:
    """Metrics, per-epoch history and weights of every run, read back from MLflow."""
    client = store.client(uri)
    rows, histories, weights = [], {}, {}
    for (preset, seed), run_id in sorted(run_ids.items()):
        metrics = client.get_run(run_id).data.metrics
        rows.append(
            {
                "preset": preset,
                "seed": seed,
                "run_id": run_id,
                **{
                    k: metrics[k]
                    for k in (
                        "test_accuracy",
                        "test_loss",
                        "best_epoch",
                        "stopped_epoch",
                        "best_val_loss",
                        "train_seconds",
                    )
                },
            }
        )
        histories[preset, seed] = pd.read_csv(run_artifact(run_id, "history.csv", uri))
        if preset in REGULARIZER_PRESETS.values():
            net = load_model(run_artifact(run_id, "model.npz", uri))
            weights[preset, seed] = net.theta[: net.n_weights].copy()
    return pd.DataFrame(rows), histories, weights


def sweep_tables(
    studies: list, runs: pd.DataFrame, direction: str, presets: dict[str, TrainConfig]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All trials, and the sweep's best per activation and per regularizer beside the report's
    hand-picked settings and our reproduction of them."""
    trials = summary.trials_table(studies)
    mean_acc = runs.groupby("preset")["test_accuracy"].mean()

    complete = trials["state"] == "COMPLETE" if not trials.empty else pd.Series(dtype=bool)

    def against(column: str, choices: dict[str, str]) -> pd.DataFrame:
        best = summary.best_by(trials, column, direction)
        rows = []
        for value, preset in choices.items():
            cfg = presets.get(preset)
            found = best[best[column] == value] if column in best else best.iloc[:0]
            row = {
                column: value,
                "report lr": cfg.optimizer.lr if cfg else None,
                "report lambda": cfg.regularizer.lam if cfg else None,
                "report acc %": render.REPORT.loc[preset, "report_accuracy"] * 100,
                "reproduced acc %": round(100 * mean_acc.get(preset, np.nan), 2),
                "sweep trials": int(((trials.get(column) == value) & complete).sum()),
            }
            if not found.empty:
                f = found.iloc[0]
                row.update(
                    {
                        "sweep lr": f["optimizer.lr"],
                        "sweep activation": f.get("model.activation", cfg.model.activation),
                        "sweep regularizer": f.get("regularizer", cfg.regularizer.kind),
                        "sweep lambda": f.get("regularizer.lam", None),
                        "sweep val loss": f["val_loss"],
                        "sweep acc %": round(100 * f["test_accuracy"], 2),
                    }
                )
            rows.append(row)
        return pd.DataFrame(rows)

    return (
        trials,
        against("model.activation", ACTIVATION_PRESETS),
        against("regularizer", REGULARIZER_PRESETS),
    )


def run_sweep(
    cfg: DictConfig, base: list[str], workers: int, parent_run_id: str
) -> tuple[list, settings.Settings]:
    """The compact sweep, as a resumable study named after everything that defines it."""

    key = hashlib.sha256(" ".join([*base, code_version()]).encode()).hexdigest()[:8]
    raw = train.compose(
        [
            f"sweep={cfg.report.sweep}",
            f"n_trials={cfg.report.sweep_trials}",
            f"workers={workers}",
            f"study.name=report-{cfg.report.sweep}-{key}",
            f"study.pruner={cfg.report.sweep_pruner}",
            *base,
        ],
        config_name="sweeps",
    )
    s = settings.settings_from(raw, base)
    epochs = settings.check(s).trainer.epochs
    studies = st.resume(s, epochs)
    st.run_workers(s, parent_run_id, epochs)
    return studies, s


def build(cfg: DictConfig, base: list[str], parent: ParentRun, out: Path) -> list[str]:
    """Everything but the writing: returns the errors (failed runs) to report at the end."""
    seeds = list(range(cfg.report.seeds))
    presets: list[str] = list(cfg.report.presets)
    workers = cfg.report.workers or os.cpu_count() or 1
    configs = {(p, s): job_config(base, p, s) for p in presets for s in seeds}
    uri, experiment = (
        configs[presets[0], 0].tracking.uri,
        configs[presets[0], 0].tracking.experiment,
    )
    sections: list[render.Section] = []
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    # 1. the gradient check (section 3, Table 1)
    grad_cfg = configs.get(("momentum", 0)) or job_config(base, "momentum", 0)
    rows = pd.DataFrame(gradcheck.table1(grad_cfg))
    rows.to_csv(out / "gradcheck.csv", index=False)
    sections.append(
        render.Section(
            "Gradient check (report section 3, Table 1)",
            render.gradcheck_text(rows),
            [("Table 1, ours beside the report's", rows)],
        )
    )

    # 2. the six experiments over seeds, reusing identical finished runs

    run_ids, jobs = {}, {}
    for key, c in configs.items():
        found = None if cfg.report.force else find_finished(uri, experiment, identity(c))
        if found:
            run_ids[key] = found
        else:
            jobs[key] = job_overrides(base, *key)
    print(
        f"experiments: {len(run_ids)} of {len(configs)} runs reused, training {len(jobs)} "
        f"with {workers} worker(s)",
        flush=True,
    )
    sections.insert(0, setup_section(configs[presets[0], 0], base, seeds, len(run_ids), len(jobs)))
    # longest first: networks with hidden layers before softmax regression
    jobs = dict(sorted(jobs.items(), key=lambda kv: not configs[kv[0]].model.hidden))
    trained, errors = run_jobs(jobs, workers, parent.run_id)
    run_ids.update(trained)
    runs, histories, weights = collect(run_ids, uri)
    runs.to_csv(out / "runs.csv", index=False)
    table = render.comparison(runs)
    table.to_csv(out / "comparison.csv", index=False)
    section = render.Section(
        "The report's experiments, reproduced over seeds",
        render.comparison_text(table),
        [("Comparison with the report", table)],
    )
    for preset in presets:
        if (preset, 0) in histories:
            best = int(runs[(runs.preset == preset) & (runs.seed == 0)]["best_epoch"].iloc[0])
            section.figures.append(
                (
                    f"{preset}: loss and accuracy per epoch (seed 0)",
                    render.curves_figure(
                        histories[preset, 0], best, preset, figures / f"curves_{preset}.png"
                    ),
                )
            )
    sections.append(section)

    # 3. activations and regularizers
    seed0 = {p: h for (p, s), h in histories.items() if s == 0}
    if set(ACTIVATION_PRESETS.values()) <= set(runs["preset"]):
        sections.append(
            render.Section(
                "Activations compared",
                [],
                figures=[
                    (
                        "Sigmoid, tanh and ReLU",
                        render.activation_figure(runs, seed0, figures / "activations.png"),
                    )
                ],
            )
        )
    by_preset: dict[str, list[np.ndarray]] = {}
    for (preset, _), w in sorted(weights.items()):
        by_preset.setdefault(preset, []).append(w)
    if by_preset:
        sparse = render.sparsity(by_preset)
        sparse.to_csv(out / "sparsity.csv", index=False)
        sections.append(
            render.Section(
                "Does L1 give sparser weights than L2?",
                render.sparsity_text(sparse),
                [("Share of near-zero weights", sparse)],
                [
                    (
                        "Weight magnitudes",
                        render.sparsity_figure(by_preset, figures / "sparsity.png"),
                    )
                ],
            )
        )

    # 4. the compact sweep
    if cfg.report.sweep_trials > 0:
        studies, s = run_sweep(cfg, base, workers, parent.run_id)
        preset_cfgs = {p: c for (p, seed), c in configs.items() if seed == 0}
        trials, by_act, by_reg = sweep_tables(studies, runs, s.direction, preset_cfgs)
        for name, frame in (
            ("sweep_trials", trials),
            ("sweep_best_activation", by_act),
            ("sweep_best_regularizer", by_reg),
        ):
            frame.to_csv(out / f"{name}.csv", index=False)
        states = trials["state"].value_counts() if not trials.empty else pd.Series(dtype=int)
        text = [
            f"{len(trials)} trials of the '{s.sweep}' space ({s.sampler}, {s.pruner} "
            f"pruner, objective {s.objective}): {states.get('COMPLETE', 0)} complete, "
            f"{states.get('PRUNED', 0)} pruned, {states.get('FAIL', 0)} failed. The test "
            "set never selects: trials are ranked by validation loss."
        ]
        for frame, column in ((by_act, "model.activation"), (by_reg, "regularizer")):
            if "sweep acc %" not in frame:
                continue
            for _, r in frame.dropna(subset=["sweep acc %"]).iterrows():
                lam = "" if pd.isna(r["sweep lambda"]) else f" lambda {r['sweep lambda']:.2g}"
                text.append(
                    f"Best of {r['sweep trials']} complete trial(s) with {column} = {r[column]}: "
                    f"{r['sweep activation']}, "
                    f"{r['sweep regularizer']}{lam}, lr {r['sweep lr']:.3g} gives "
                    f"{r['sweep acc %']:.2f}% on test, against {r['reproduced acc %']:.2f}% "
                    f"with the report's hand-picked settings (the report: "
                    f"{r['report acc %']:.2f}%)."
                )
        sections.append(
            render.Section(
                "What tuning gives (Optuna sweep)",
                text,
                [("Best per activation", by_act), ("Best per regularizer", by_reg)],
            )
        )

    if errors:
        failed = pd.DataFrame(
            [{"preset": p, "seed": s, "error": e} for (p, s), e in errors.items()]
        )
        failed.to_csv(out / "failed.csv", index=False)
        sections.append(
            render.Section("Failed runs", [f"{len(errors)} run(s) failed."], [("Failures", failed)])
        )
    title = "Multi-layer neural network for MNIST: the report reproduced and extended"
    render.write_markdown(title, sections, out)
    render.write_html(title, sections, out)

    set_tags(
        parent.run_id,
        {"report.runs": ",".join(runs["run_id"])[:5000], "report.failed": str(len(errors))},
        uri,
    )
    for path in out.iterdir():  # this report's files only (reports/ may hold bench/ too)
        if path.is_file():
            parent.client.log_artifact(parent.run_id, str(path))
    parent.client.log_artifacts(parent.run_id, str(figures), "figures")
    return [f"{p} seed {s}: {e}" for (p, s), e in errors.items()]


def setup_section(
    cfg: TrainConfig, base: list[str], seeds: list[int], reused: int, trained: int
) -> render.Section:

    p = provenance()
    return render.Section(
        "Setup",
        [
            f"Generated {time.strftime('%Y-%m-%d %H:%M')} from commit {p['git.commit'][:12]}"
            f"{' (with uncommitted changes)' if p['git.dirty'] == 'true' else ''}, core code "
            f"version {p['code_version']}, NumPy {p['version.numpy']}.",
            f"Data: {cfg.data.name} ({cfg.data.dir}), digest {data_digest(cfg.data)[:16]}; "
            f"{cfg.data.val_fraction:.0%} of the training images for validation (split seed "
            f"{cfg.data.split_seed}), normalisation {cfg.data.normalize}, {cfg.trainer.dtype}.",
            f"Seeds {', '.join(map(str, seeds))} for each of the report's experiments, with its "
            f"hyperparameters; {reused} runs reused from MLflow, {trained} trained now.",
            "Overrides on top of the presets: " + (" ".join(base) if base else "none") + ".",
        ],
    )


@dataclass
class ReportSchema:
    """``report.*`` (``conf/report.yaml``), typed: ``report.seeds=1.5`` is one line."""

    seeds: int = 3
    presets: list[str] = field(default_factory=list)
    workers: int | None = None
    force: bool = False
    out: str = "reports"
    sweep: str = "report"
    sweep_trials: int = 24
    sweep_pruner: str = "median"


def report_settings(cfg: DictConfig) -> ReportSchema:
    """Every ``report.*`` setting checked before anything runs or is deleted."""
    try:
        r: ReportSchema = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(ReportSchema), cfg.report)
        )
    except OmegaConfBaseException as err:
        raise ConfigError(f"report.{err.full_key}: {str(err).splitlines()[0]}") from None
    known = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
    sweeps = sorted(p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml"))
    checks = [
        ("seeds", r.seeds, r.seeds >= 1, "an integer >= 1"),
        ("presets", r.presets, bool(r.presets), f"a non-empty list of {known}"),
        ("workers", r.workers, r.workers is None or r.workers >= 1, "null or an integer >= 1"),
        ("sweep", r.sweep, r.sweep in sweeps, f"one of {sweeps}"),
        ("sweep_trials", r.sweep_trials, r.sweep_trials >= 0, "an integer >= 0"),
        (
            "sweep_pruner",
            r.sweep_pruner,
            r.sweep_pruner in settings.PRUNERS,
            f"one of {settings.PRUNERS}",
        ),
    ]
    checks += [("presets", p, p in known, f"presets from {known}") for p in r.presets]
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"report.{key}={value!r} is invalid: expected {allowed}")
    out = resolve_path(r.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigError(f"report.out={r.out!r} is not a writable folder ({reason})") from None
    return r


def swap_in(staging: Path, out: Path) -> None:
    """Replace the previous report's files by the new ones, which are complete: the report's
    own files and figures only (other folders, such as bench/, stay)."""
    for stale in out.iterdir():
        if stale.is_file() and not stale.name.startswith("."):
            stale.unlink()
    shutil.rmtree(out / "figures", ignore_errors=True)
    for item in staging.iterdir():
        os.replace(item, out / item.name)
    staging.rmdir()


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="report")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    start = time.monotonic()

    def body() -> None:
        base = train.training_overrides(HydraConfig.get().overrides.task, REPORT_KEYS)
        r = report_settings(cfg)
        first = job_config(base, r.presets[0], 0)
        out = resolve_path(r.out)
        parent = ParentRun(
            first.tracking.uri,
            first.tracking.experiment,
            "report",
            {
                "kind": "report",
                "report.overrides": store.mask(" ".join(base)),
                "report.settings": str(asdict(first.trainer)),
            },
        )
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=out))  # swapped in when done
        try:
            errors = build(cfg, base, parent, staging)
            swap_in(staging, out)
        except BaseException as err:
            shutil.rmtree(staging, ignore_errors=True)
            parent.end("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
            raise
        parent.end("FAILED" if errors else "FINISHED")
        print(
            f"report: {out / 'report.md'} and {out / 'report.html'} "
            f"({time.monotonic() - start:.0f}s in all; MLflow run {parent.run_id})"
        )
        if errors:
            raise cli.WorkFailed(
                f"{len(errors)} run(s) failed, the report shows what finished: " + "; ".join(errors)
            )

    cli.command(body, "run the same command again to continue from the finished runs")


if __name__ == "__main__":
    main()
