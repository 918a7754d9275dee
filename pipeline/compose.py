"""Configs composed from ``conf/`` as the command line would, fast enough for hundreds.

A report composes hundreds of configs that differ only in plain values (``trainer.seed=2``),
at ~80 ms each through Hydra. So the config groups an override list picks are composed once
(cached), and its plain ``key=value`` overrides are applied to a copy exactly as Hydra applies
them (``OmegaConf.update(merge=True)`` after composition). Anything else (``+key``, ``~key``,
``group@package``) and any error go through Hydra itself, with Hydra's messages.

The user's own config folders (``--config-dir DIR``: presets in ``DIR/experiment/``, search
spaces in ``DIR/sweep/``) reach every composition, in worker processes too, through
``$PIPELINE_SEARCHPATH`` (see ``share_searchpath``).

(A module of its own, never run as ``__main__``: Hydra's launchers pickle the task function,
and a cached function in ``__main__`` cannot be found again in their workers.)
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.config import CONF_DIR, TrainConfig, to_config

SEARCHPATH_ENV = "PIPELINE_SEARCHPATH"


def share_searchpath() -> None:
    """Inside a Hydra app: put the user's config folders (``--config-dir``) in the environment.
    A spawned worker has no Hydra of its own and composes from ``conf/`` alone, where a preset
    of the user's is "Could not find 'experiment/mine'"; it inherits the environment."""
    from hydra.core.hydra_config import HydraConfig

    sources = HydraConfig.get().runtime.config_sources
    own = [f"file://{s.path}" for s in sources if s.schema == "file" and s.provider != "main"]
    if own:
        os.environ[SEARCHPATH_ENV] = json.dumps(own)


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """Compose a config from ``conf/`` as the command line would, inside or outside a Hydra app
    (a copy: the caller may change it)."""
    groups, values = _split(overrides)
    if values is None:
        return _hydra_compose(tuple(overrides), config_name)
    cfg = copy.deepcopy(_cached_compose(groups, config_name))
    try:
        for key, value in values:
            OmegaConf.update(cfg, key, value, merge=True)
    except OmegaConfBaseException:
        return _hydra_compose(tuple(overrides), config_name)  # Hydra's own error message
    return cfg


def _split(overrides: Sequence[str]) -> tuple[tuple[str, ...], list[tuple[str, Any]] | None]:
    """The group-selecting overrides, and the plain values (None: not plain, ask Hydra)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return (), None
    groups, values = [], []
    for o in parsed:
        plain = not (o.is_delete() or o.is_add() or o.is_force_add() or o.is_sweep_override())
        if not plain or o.package is not None:
            return (), None
        if (Path(CONF_DIR) / o.key_or_group).is_dir():
            groups.append(o.input_line)
        else:
            values.append((o.key_or_group, o.value()))
    return tuple(groups), values


@functools.lru_cache(maxsize=64)
def _cached_compose(overrides: tuple[str, ...], config_name: str) -> DictConfig:
    return _hydra_compose(overrides, config_name)


def _hydra_compose(overrides: tuple[str, ...], config_name: str) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if SEARCHPATH_ENV in os.environ:
        quoted = ",".join(repr(p) for p in json.loads(os.environ[SEARCHPATH_ENV]))
        overrides = (f"hydra.searchpath=[{quoted}]", *overrides)
    if GlobalHydra.instance().is_initialized():  # inside @hydra.main: same search path
        return hydra_compose(config_name, overrides=list(overrides))
    with initialize_config_dir(config_dir=CONF_DIR, version_base=None):
        return hydra_compose(config_name, overrides=list(overrides))


def config(overrides: Sequence[str] = ()) -> TrainConfig:
    """The validated training config the command line ``overrides`` make."""
    return to_config(compose(overrides))


@functools.lru_cache(maxsize=16)
def preset_settings(preset: str) -> dict[str, Any]:
    """A preset's settings as it stands (what run names are made against)."""
    return config([f"experiment={preset}"] if preset != "custom" else []).settings()
