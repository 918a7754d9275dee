"""Which of the original's unstated implementation choices reproduce its numbers.

    python -m sweeps.forensics experiment=l1 [forensics.trials=24] [forensics.seeds=3]

The original leaves open where lambda meets the batch, eq. 7's 1/2, whether biases are
penalised, how training stopped (its rule, "no improvement", or a fixed number of epochs equal
to its stop epoch), whether early stopping watched the loss with the penalty, and the
initialisation. Each is a config option of the core; for one experiment, every applicable
combination is an Optuna trial (all of them when there are at most ``max_grid``, else a seeded
random sample of ``trials`` distinct ones, enqueued in the study), at the original's
hyperparameters, valued by its distance to the original's row (``original.Target``). Trials that
stop too late to come closer, or whose validation numbers stay far away, are pruned. The best
three are re-run over seeds, so the winner comes with a mean and a spread; finished trainings
are reused everywhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import hydra
import numpy as np
import optuna
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.trial import TrialState

from pipeline import cli, train
from pipeline.config import CONF_DIR, ConfigError, TrainConfig
from pipeline.tracking.provenance import code_version
from sweeps import identification, jobs, settings, space, storage
from sweeps import study as st
from sweeps.original import ROWS, Target, borrowed_length

log = logging.getLogger(__name__)


@dataclass
class ForensicsSchema:
    """``forensics.*`` (``conf/forensics.yaml``)."""

    trials: int = 32  # a sample of this many distinct combinations when the grid is larger
    max_grid: int = 64
    seeds: int = 3  # the best three are re-run over seeds 0..seeds-1
    workers: int | None = None
    storage: str | None = None
    rows: list[str] | None = None  # the report: which experiments may be searched (null: all)


def options(cfg: ForensicsSchema | Any, prefix: str = "forensics") -> ForensicsSchema:
    try:
        o: ForensicsSchema = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(ForensicsSchema), cfg)
        )
    except OmegaConfBaseException as err:
        raise ConfigError(f"{prefix}.{err.full_key}: {str(err).splitlines()[0]}") from None
    for key, value, ok in [
        ("trials", o.trials, o.trials >= 1),
        ("max_grid", o.max_grid, o.max_grid >= 1),
        ("seeds", o.seeds, o.seeds >= 1),
        ("workers", o.workers, o.workers is None or o.workers >= 1),
    ]:
        if not ok:
            raise ConfigError(f"{prefix}.{key}={value!r} is invalid: expected an integer >= 1")
    return o


def space_for(cfg: TrainConfig, target: Target) -> dict[str, dict[str, Any]]:
    """The applicable choices for this experiment, ordered so that the grid starts with its
    cheapest and most telling combinations: training for exactly the original's stop epoch
    (a few epochs each) comes first, so a good distance is known early and the long runs that
    cannot beat it are pruned within a few epochs (``objective.DistancePruner``)."""

    def choice(*values: Any, when: dict | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "categorical", "choices": list(dict.fromkeys(values))}
        return spec | ({"when": when} if when else {})

    params: dict[str, dict[str, Any]] = {}
    fixed = [] if target.fixed_epochs is None else ["none"]
    params["trainer.stopping"] = choice(*fixed, cfg.trainer.stopping, "rises", "patience")
    if target.fixed_epochs is not None:  # trained for exactly the original's stop epoch
        params["trainer.epochs"] = choice(target.fixed_epochs, when={"trainer.stopping": ["none"]})
    penalty = cfg.regularizer.kind != "none" and cfg.regularizer.lam > 0
    if penalty:
        params["regularizer.scale"] = choice(cfg.regularizer.scale, "mean", "sum")
        if cfg.regularizer.kind == "l1":
            params["regularizer.l1_half"] = choice(cfg.regularizer.l1_half, False, True)
        params["regularizer.penalize_bias"] = choice(cfg.regularizer.penalize_bias, False, True)
        params["trainer.monitor"] = choice(
            cfg.trainer.monitor,
            "val_loss",
            "val_objective",
            when={"trainer.stopping": ["rises", "patience"]},
        )
    if cfg.model.hidden:
        params["model.init"] = choice(cfg.model.init, "normal", "uniform")
    return params


def row_settings(
    preset: str,
    base: list[str],
    o: ForensicsSchema,
    tracking: str | None,
    target: Target | None = None,
) -> settings.Settings:
    """The study of one experiment against the original's row (or another ``target``): its
    space, its grid (or a sample of it), distance and pruner."""
    overrides = (*base, f"experiment={preset}")
    cfg = train.config(overrides)
    target = target or Target.of(preset)
    params = space_for(cfg, target)
    combos = len(list(space.corners(space.parse("forensics", params), {})))
    key = hashlib.sha256(" ".join([*overrides, str(target), code_version()]).encode())
    key = key.hexdigest()[:8]
    return settings.Settings(
        sweep=f"forensics-{preset}",
        params=params,
        groups=(),
        base_overrides=overrides,
        n_trials=combos if combos <= o.max_grid else o.trials,
        min_complete=0,
        workers=o.workers or os.cpu_count() or 1,
        name=f"forensics-{preset}-{key}",
        storage=storage.check(o.storage or storage.default(tracking)),
        seed=0,
        sampler="grid",  # every combination, or a seeded sample of ``trials`` distinct ones
        pruner="distance",
        objective="distance",
        threshold=0.0,
        target=target,
    )


@dataclass
class Finding:
    """One experiment's search: every trial, and the best three over seeds."""

    preset: str
    s: settings.Settings
    trials: pd.DataFrame  # one row per trial: choices, state, distance
    ranking: pd.DataFrame  # the best three (and the experiment as it stands), over seeds
    combos: int  # how many combinations the space has
    parent_run_id: str | None
    identified: pd.DataFrame  # per choice of the best: does the evidence pin it?


def search(preset: str, s: settings.Settings, seeds: int, parent: str | None) -> Finding:
    """Run (or resume) one experiment's study, then its best three over ``seeds`` seeds (the
    report runs the steps for several experiments at once: ``context.gather``)."""
    settings.check(s)
    [ran] = st.run_studies([s], s.workers, parent)
    trials = trials_table(s, ran.studies[0][1])
    todo = rerun_jobs(s, trials, seeds, ran.parent_run_id)
    run_ids, errors, _ = jobs.ensure(todo, s.workers)
    if errors:
        raise cli.WorkFailed("; ".join(f"{k[0]} seed {k[1]}: {e}" for k, e in errors.items()))
    runs = jobs.collect(run_ids, train.config(s.base_overrides).tracking.uri, histories=False)[0]
    return finding(preset, ran, trials, runs)


def finding(preset: str, ran: st.Ran, trials: pd.DataFrame, runs: pd.DataFrame) -> Finding:
    combos = len(list(space.corners(ran.s.space()[1], {})))
    ranked = ranking(ran.s, runs)
    stands = train.config(ran.s.base_overrides).flat()
    pinned = identification.identify(ran.s, trials, ranked, stands) if len(ranked) else ranked
    return Finding(preset, ran.s, trials, ranked, combos, ran.parent_run_id, pinned)


def choices_label(s: settings.Settings, params: dict[str, Any], stands: dict[str, Any]) -> str:
    """What a combination changes from the experiment as it stands (``stands``; "as it stands"
    if nothing): ``init=normal monitor=val_objective``."""
    changed = {k: v for k, v in active(s, params).items() if stands.get(k) != v}
    return " ".join(train.mark(k, v) for k, v in changed.items()) or "as it stands"


def trials_table(s: settings.Settings, study: optuna.Study) -> pd.DataFrame:
    rows = []
    stands = train.config(s.base_overrides).flat()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        a = t.user_attrs
        rows.append(
            {
                "choices": choices_label(s, t.params, stands),
                "state": t.state.name.lower(),
                "test acc %": round(100 * a.get("test_accuracy", np.nan), 2),
                "test loss": a.get("test_loss", np.nan),
                "stop epoch": a.get("stopped_epoch"),
                "distance": t.value if t.state == TrialState.COMPLETE else np.nan,
                "params": t.params,
            }
        )
    return pd.DataFrame(rows).sort_values("distance", na_position="last").reset_index(drop=True)


def rerun_jobs(
    s: settings.Settings, trials: pd.DataFrame, seeds: int, parent: str | None
) -> dict[jobs.Key, jobs.Job]:
    """The three closest distinct combinations, and the experiment as it stands, over seeds
    (seed 0 of each is its trial, reused), as group runs under the study's parent run."""
    complete = trials[trials["state"] == "complete"]
    picks: dict[str, dict] = {}
    for _, row in complete.iterrows():
        if len(picks) < 3:
            picks.setdefault(row["choices"], row["params"])
    stands = train.config(s.base_overrides).flat()  # the experiment's own choices
    picks.setdefault("as it stands", {k: stands[k] for k in s.params if k != "trainer.epochs"})
    return {
        (f"{s.sweep} {label}", seed): jobs.Job(
            (
                *s.base_overrides,
                *space.as_overrides(active(s, params)),
                f"trainer.seed={seed}",
                *jobs.EVIDENCE_ONLY,
            ),
            {"kind": "forensics-run", "forensics.row": s.sweep},
            parent,
        )
        for label, params in picks.items()
        for seed in range(seeds)
    }


def ranking(s: settings.Settings, runs: pd.DataFrame) -> pd.DataFrame:
    """The re-run combinations' means and spreads over seeds, ranked by the distance of the
    means to the original's row."""
    prefix = f"{s.sweep} "
    rows = []
    for group, runs_of in runs[runs["group"].str.startswith(prefix)].groupby("group", sort=False):
        acc, loss, stop = runs_of["test_accuracy"], runs_of["test_loss"], runs_of["stopped_epoch"]
        each = [s.target.distance(a, b, c) for a, b, c in zip(acc, loss, stop)]
        rows.append(
            {
                "choices": group.removeprefix(prefix),
                "seeds": len(runs_of),
                "test acc % (mean)": 100 * acc.mean(),
                "test acc % (sd)": 100 * acc.std(ddof=1) if len(runs_of) > 1 else np.nan,
                "test loss (mean)": loss.mean(),
                "stop epochs": " / ".join(str(int(e)) for e in stop),
                "distance": s.target.distance(acc.mean(), loss.mean(), stop.mean()),
                "distance (sd)": float(np.std(each, ddof=1)) if len(each) > 1 else np.nan,
                "run ids": " ".join(runs_of["run_id"]),
            }
        )
    return pd.DataFrame(rows).sort_values("distance").reset_index(drop=True)


def active(s: settings.Settings, params: dict[str, Any]) -> dict[str, Any]:
    """A combination's params whose ``when`` holds (a grid trial carries only those)."""
    parsed = space.parse(s.sweep, s.params)
    out: dict[str, Any] = {}
    for p in parsed:
        if p.key in params and all(out.get(k) in allowed for k, allowed in p.when.items()):
            out[p.key] = params[p.key]
    return out


def ranking_text(f: Finding) -> str:
    t = f.s.target
    head = f"{f.preset}: the original reports {100 * t.accuracy:.2f}%, loss {t.loss:g}" + (
        f", stop epoch {t.stop_epoch}" if t.stop_epoch else ""
    )
    note = borrowed_length(f.preset)
    table = f.ranking.drop(columns=["run ids"]).to_string(index=False)
    return "\n".join([head, *([note] if note else []), table])


@hydra.main(version_base=None, config_path=CONF_DIR, config_name="forensics")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    def body() -> None:
        base = train.training_overrides(HydraConfig.get().overrides.task, {"forensics", "hydra"})
        o = options(cfg.forensics)
        preset = cfg.get("preset")
        if preset not in ROWS.index:
            raise ConfigError(
                f"experiment={preset} is invalid: expected one of the report's experiments "
                f"({', '.join(ROWS.index)}), e.g. experiment=l1"
            )
        base = [b for b in base if not b.startswith("experiment=")]
        s = row_settings(preset, base, o, train.config(base).tracking.uri)
        finding = search(preset, s, o.seeds, None)
        log.info(ranking_text(finding))

    cli.command(body, "run the same command again to continue the search")


if __name__ == "__main__":
    sys.exit(main())
