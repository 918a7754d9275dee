"""A sweep's settings: typed, checked before any trial, and the fingerprint a study keeps.

Every value a search space can produce is composed into a training config before the first
trial, so a bad choice or range fails at once with one line naming it; a study remembers the
settings it was made with (``fingerprint``) and ``study.resume`` refuses to mix others in.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline import data, train
from pipeline.config import ConfigError, TrainConfig, to_config
from pipeline.tracking.provenance import code_version
from sweeps import launchers, space, storage
from sweeps.original import Target
from sweeps.space import SweepError

OBJECTIVES = {"val_loss": "minimize", "val_accuracy": "maximize"}
SAMPLERS = ("tpe", "random", "grid")  # grid: every combination of categorical choices
PRUNERS = ("median", "hyperband", "threshold", "none")


@dataclass
class StudySchema:
    name: str | None = None
    storage: str | None = None
    seed: int = 0
    sampler: str = "tpe"
    pruner: str = "median"
    objective: str = "val_loss"
    threshold: float = 0.0


@dataclass
class SweepSchema:
    """The sweep's own settings (``conf/sweeps.yaml``), typed: ``n_trials=abc`` is one line."""

    n_trials: int = 20
    min_complete: int = 0
    workers: int = 1
    study: StudySchema = field(default_factory=StudySchema)


@dataclass(frozen=True)
class Part:
    """One study in the storage: the whole sweep, or one group's sub-study."""

    name: str
    fixed: dict[str, Any]  # the group's values (empty without groups)

    @property
    def label(self) -> str:
        return " ".join(str(v) for v in self.fixed.values())


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs, as plain picklable values."""

    sweep: str
    params: dict[str, dict[str, Any]]
    groups: tuple[str, ...]
    base_overrides: tuple[str, ...]  # the command line's training overrides
    n_trials: int  # per part
    min_complete: int  # per part: stop once this many are complete (0: run n_trials)
    workers: int
    name: str
    storage: str  # an Optuna storage URL, or "journal:<path>"
    seed: int
    sampler: str
    pruner: str
    objective: str  # a key of OBJECTIVES, or "distance" (to ``target``, for forensics)
    threshold: float
    target: Target | None = None  # the original's row a forensic study measures against

    @property
    def direction(self) -> str:
        return "minimize" if self.objective == "distance" else OBJECTIVES[self.objective]

    def space(self) -> tuple[list[space.Param], list[space.Param]]:
        """All params, and those sampled inside a part (the groups' are fixed per part)."""
        params = space.parse(self.sweep, self.params)
        return params, space.split_groups(params, self.groups)

    def parts(self) -> list[Part]:
        params, _ = self.space()
        values = space.group_values(params, self.groups)
        if not self.groups:
            return [Part(self.name, {})]
        return [
            Part(f"{self.name}:" + ",".join(f"{k}={v}" for k, v in fixed.items()), fixed)
            for fixed in values
        ]


def settings_from(cfg: Any, base_overrides: Sequence[str]) -> Settings:
    """Read and check the sweep settings of a composed ``sweeps.yaml``."""
    try:
        own = {k: cfg.get(k) for k in ("n_trials", "min_complete", "workers", "study")}
        typed: SweepSchema = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(SweepSchema), own)
        )
    except OmegaConfBaseException as err:
        raise SweepError(f"{err.full_key}: {str(err).splitlines()[0]}") from None
    study = typed.study
    checks = [
        ("n_trials", typed.n_trials, typed.n_trials >= 1, "an integer >= 1"),
        ("min_complete", typed.min_complete, typed.min_complete >= 0, "an integer >= 0"),
        ("workers", typed.workers, typed.workers >= 1, "an integer >= 1"),
        ("study.seed", study.seed, study.seed >= 0, "an integer >= 0"),
        ("study.sampler", study.sampler, study.sampler in SAMPLERS, f"one of {SAMPLERS}"),
        ("study.pruner", study.pruner, study.pruner in PRUNERS, f"one of {PRUNERS}"),
        ("study.objective", study.objective, study.objective in OBJECTIVES, str(OBJECTIVES)),
        ("study.threshold", study.threshold, math.isfinite(study.threshold), "a finite number"),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise SweepError(f"{key}={value!r} is invalid: expected {allowed}")
    sweep = cfg.get("sweep") or {}
    name = study.name
    if name is not None and (not name.strip() or any(c in name for c in ":/")):
        raise SweepError(f"study.name={name!r} is invalid: a non-empty name without ':' or '/'")
    params = sweep.get("params")
    s = Settings(
        sweep=str(sweep.get("name")),
        params={k: OmegaConf.to_container(v) for k, v in params.items()} if params else {},
        groups=tuple(sweep.get("groups") or ()),
        base_overrides=tuple(base_overrides),
        n_trials=typed.n_trials,
        min_complete=typed.min_complete,
        workers=typed.workers,
        name=name or "",
        storage=storage.check(study.storage or storage.default(cfg.tracking.uri)),
        seed=study.seed,
        sampler=study.sampler,
        pruner=study.pruner,
        objective=study.objective,
        threshold=study.threshold,
    )
    return s if name else replace(s, name=f"{s.sweep}-{cfg.data.name}-{settings_hash(s)}")


def compose_trial(s: Settings, values: dict[str, Any]) -> TrainConfig:
    """The training config of one point of the space. Hydra composes the config groups a point
    picks (``experiment``, ``regularizer``), once each; plain values are then set on a copy,
    which makes checking a space of hundreds of points take a fraction of a second."""
    groups = {k: v for k, v in values.items() if "." not in k}
    raw = train.compose((*s.base_overrides, *space.as_overrides(groups)))  # a cached copy
    for key, value in values.items():
        if "." in key:
            OmegaConf.update(raw, key, value, merge=False)  # an unknown key raises (struct)
    cfg = to_config(raw)
    cfg.trainer.progress = False  # one line per trial (see ``progress``), not one per epoch
    cfg.tracking.figures = False  # the UI draws a trial's curves from its metrics; the best
    cfg.tracking.model = False  # trials are retrained as whole runs, with their models
    if cfg.trainer.threads is None:  # a SLURM job's cores, else two single-thread runs beat
        # one two-thread run (bench)
        cfg.trainer.threads = launchers.current().threads or (1 if s.workers > 1 else None)
    return cfg


def _compose_or_blame(s: Settings, values: dict[str, Any], blame: str) -> TrainConfig:
    try:
        return compose_trial(s, values)
    except ConfigError as err:
        raise SweepError(f"{blame} gives {err}") from None
    except Exception as err:  # Hydra's override errors: unknown key or group option
        first = str(err).splitlines()[0]
        raise SweepError(f"{blame} is not a training setting: {first}") from None


def base_config(s: Settings) -> TrainConfig:
    """The command line's training config on its own, so that its errors name its own keys."""
    try:
        return to_config(train.compose(s.base_overrides))
    except HydraException as err:
        raise ConfigError(str(err).splitlines()[0]) from None


def check(s: Settings, combinations: bool = True) -> TrainConfig:
    """Refuse bad settings before any trial: the base config on its own (so its errors name
    its own keys), then every value each param can take (at a point where its condition
    holds), then, with ``combinations``, every combination of extremes the space can produce.
    Returns the base training config."""
    base = base_config(s)
    params, sampled = s.space()
    if s.sampler == "grid" and any(p.type == "float" for p in sampled):
        raise SweepError(
            "study.sampler=grid is invalid for this space: it has float params; use tpe or random"
        )
    corners = list(space.corners(params, {}))
    for p in params:
        held = (c for c in corners if all(c.get(k) in ok for k, ok in p.when.items()))
        where = next(held, None)
        for value in p.extremes() if where is not None else ():
            _compose_or_blame(s, {**where, p.key: value}, f"sweep.params.{p.key}={value}")
    for part in s.parts() if combinations else ():
        for combo in space.corners(sampled, part.fixed):
            overrides = " ".join(space.as_overrides(combo))
            _compose_or_blame(s, combo, f"sweep.params: the combination {overrides}")
    return base


def fingerprint(s: Settings, part: Part) -> dict[str, Any]:
    """What a study's trials mean: the fixed training settings, the space, the objective, the
    pruner, the core's code and the data. Resuming with any of these changed would mix two
    studies."""
    _, sampled = s.space()
    return _meaning(s, compose_trial(s, dict(part.fixed)), sampled)


def _meaning(s: Settings, fixed: TrainConfig, swept: list[space.Param]) -> dict[str, Any]:
    keys = {p.key for p in swept}
    training = {
        k: str(v)
        for k, v in fixed.settings().items()
        if k not in keys and k.split(".")[0] not in keys
    }
    return {
        "training": training,
        "space": {p.key: s.params[p.key] for p in swept},
        "objective": s.objective,
        "pruner": s.pruner,
        "code_version": code_version(),
        "data_digest": data.digest(fixed.data)[:16],  # other files under the same names
    }


def settings_hash(s: Settings) -> str:
    """Six hex digits of what the whole sweep fixes (its fingerprint over every param, groups
    included, the core's code aside): the default study name ends in it, so a smoke sweep with
    ``trainer.epochs=2`` and the real one are two studies, never a refusal. A code change keeps
    the name, and the study refuses it (``study.resume``) rather than mixing in new trials."""
    base_config(s)  # a bad command line is one line naming its key, not Hydra's traceback
    params, _ = s.space()
    meaning = _meaning(s, compose_trial(s, {}), params)
    del meaning["code_version"]
    return hashlib.sha256(json.dumps(meaning, sort_keys=True).encode()).hexdigest()[:6]


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for section in ("training", "space"):
        a, b = old.get(section, {}), new[section]
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                out.append(f"{key} was {a.get(key, '-')}, now {b.get(key, '-')}")
    out += [
        f"{k} was {old.get(k)}, now {new[k]}"
        for k in ("objective", "pruner", "code_version", "data_digest")
        if old.get(k) != new[k]
    ]
    return out
