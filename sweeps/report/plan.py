"""What a report will do, checked before anything runs or is deleted.

``report.*`` is typed (``report.seeds=1.5`` is one line), every experiment's config is composed,
every study's space is composed at every value it can take, and the output folder is probed
for writing. Only then does the work start.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline import train
from pipeline.config import CONF_DIR, ConfigError, TrainConfig, check_bools, resolve_path
from sweeps import forensics, jobs, settings, tuning
from sweeps.original import ROWS
from sweeps.report import publish


@dataclass
class ReportSchema:
    """``report.*`` (``conf/report.yaml``)."""

    seeds: int = 3
    presets: list[str] = field(default_factory=list)
    workers: int | None = None
    force: bool = False
    out: str = "reports"
    tuning: tuning.TuningSchema = field(default_factory=tuning.TuningSchema)
    forensics: forensics.ForensicsSchema = field(default_factory=forensics.ForensicsSchema)


@dataclass
class Plan:
    r: ReportSchema
    base: list[str]  # the command line's training overrides, applied to every run
    out: Path
    workers: int
    experiments: dict[jobs.Key, jobs.Job]  # (preset, seed) -> job
    configs: dict[jobs.Key, TrainConfig]
    tuning: settings.Settings | None
    forensics: dict[str, settings.Settings]  # every preset a search may be asked for

    @property
    def first(self) -> TrainConfig:
        return next(iter(self.configs.values()))

    @property
    def gradcheck(self) -> TrainConfig:
        """The report's Table 1 network: 128 tanh units (the momentum experiment's)."""
        return train.config([*self.base, "experiment=momentum"])


def _typed(cfg: DictConfig) -> ReportSchema:
    check_bools(ReportSchema, cfg.report, "report.")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ReportSchema), cfg.report)
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"report.{err.full_key}: {str(err).splitlines()[0]}") from None


def _writable(r: ReportSchema) -> Path:
    out = resolve_path(r.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".probe-"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigError(f"report.out={r.out!r} is not a writable folder ({reason})") from None
    publish.refuse_foreign(out, list(publish.FIXED))  # before hours of training, not after
    return out


def plan(cfg: DictConfig, base: list[str]) -> Plan:
    """Check every setting, compose every config; raise one ``ConfigError`` on the first flaw."""
    r = _typed(cfg)
    known = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
    checks = [
        ("seeds", r.seeds, r.seeds >= 1, "an integer >= 1"),
        ("presets", r.presets, bool(r.presets), f"a non-empty list of {known}"),
        ("workers", r.workers, r.workers is None or r.workers >= 1, "null or an integer >= 1"),
    ]
    checks += [("presets", p, p in known, f"presets from {known}") for p in r.presets]
    checks += [
        ("forensics.rows", p, p in r.presets, f"experiments of report.presets {r.presets}")
        for p in r.forensics.rows or []
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise ConfigError(f"report.{key}={value!r} is invalid: expected {allowed}")
    tuning_options = tuning.options(r.tuning)
    forensic_options = forensics.options(r.forensics, "report.forensics")
    workers = r.workers or os.cpu_count() or 1
    experiments = {
        (p, seed): jobs.Job(
            (*base, f"experiment={p}", f"trainer.seed={seed}"),
            {"kind": "report-run", "report.experiment": p},
        )
        for p in r.presets
        for seed in range(r.seeds)
    }
    configs = {key: job.config() for key, job in experiments.items()}
    tuned = tuning.study_settings(base, tuning_options, workers, r.presets)
    if tuned is not None:
        settings.check(tuned)
    first = next(iter(configs.values()))
    searches = {}
    for p in r.presets if forensic_options.rows is None else forensic_options.rows:
        if p in ROWS.index:
            s = forensics.row_settings(p, base, forensic_options, first.tracking.uri)
            s = settings.Settings(**{**s.__dict__, "workers": workers})
            # each value once: a forensic space is the code's own list of valid choices for a
            # preset, so no combination of them can be invalid where each one is valid (its
            # whole grid, 180 configs for L1 and L2, cost seconds on every report)
            settings.check(s, combinations=False)
            searches[p] = s
    return Plan(r, base, _writable(r), workers, experiments, configs, tuned, searches)
