"""Structured configs: the schema Hydra's YAML is merged into, and its validation.

The NumPy core takes these dataclasses, never a Hydra object, so it can be used and tested
without Hydra. ``to_config`` turns a composed ``DictConfig`` into them and refuses a bad value
with one line that names the key, the value and what is allowed, before any training starts.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")  # absolute: Hydra finds it however a command is started
ACTIVATIONS = ("sigmoid", "tanh", "relu")
INITS = ("glorot", "he", "normal", "uniform", "zeros")
OPTIMIZERS = ("sgd", "momentum")
PENALTIES = ("none", "l1", "l2")
DTYPES = ("float32", "float64")
SCALES = ("mean", "sum")
STOPPING = ("rises", "patience", "none")
MONITORS = ("val_loss", "val_objective")
NORMALIZATIONS = ("per_image", "train_stats")


# Keys that record where things are or how a run is shown, not what it computes.
BOOKKEEPING = (
    "preset",
    "data.dir",
    "data.files.",
    "data.sha256.",
    "tracking.",
    "trainer.progress",
    "trainer.threads",
)


class ConfigError(ValueError):
    """A config value is out of range; the message is one line meant for the user."""


def resolve_path(path: str | Path) -> Path:
    """Relative paths are relative to the repository root, whatever Hydra's working directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


@dataclass
class DataConfig:
    name: str = "mnist"
    dir: str = "data/mnist"
    files: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str | None] = field(default_factory=dict)
    val_fraction: float = 0.2
    split_seed: int = 0
    normalize: str = "per_image"
    max_train: int | None = None
    max_test: int | None = None


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [128])
    activation: str = "tanh"
    init: str = "glorot"


@dataclass
class OptimizerConfig:
    name: str = "momentum"
    lr: float = 0.1
    gamma: float = 0.9


@dataclass
class RegularizerConfig:
    kind: str = "none"
    lam: float = 0.0
    penalize_bias: bool = False
    scale: str = "mean"  # mean: lam joins the batch-mean gradient; sum: the batch sum (lam / B)
    l1_half: bool = False  # L1 penalty lam/2 |w| as eq. 7 writes it (gradient lam/2 sign(w))


@dataclass
class TrainerConfig:
    epochs: int = 100
    batch_size: int = 128
    patience: int = 3
    stopping: str = "rises"  # rises | patience | none (all epochs, the last one's model)
    monitor: str = "val_loss"  # or val_objective: validation loss plus the penalty term
    seed: int = 0
    dtype: str = "float32"
    threads: int | None = None
    progress: bool = True


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None
    experiment: str = "mnist-mlp"
    run_name: str | None = None
    log_weights: bool = True
    figures: bool = True  # curves and confusion matrix (a sweep's trials skip them: see the UI)
    model: bool = True  # the network as an MLflow model, servable (a sweep's trials skip it)
    outbox: str | None = None  # where a run's record is kept if the store goes away mid-run
    stale_after: float = 600.0  # seconds without a heartbeat: another machine's record is stale


@dataclass
class TrainConfig:
    preset: str = "custom"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def flat(self) -> dict[str, Any]:
        """Dotted keys (``optimizer.lr``) for MLflow parameters and tables."""
        return flatten(asdict(self))

    def settings(self) -> dict[str, Any]:
        """The keys a user would change that apply here: MLflow's parameters, and what a run's
        name shows. Bookkeeping (file names, digests, tracking, display) and keys without
        effect (the activation of softmax regression, lambda without a penalty) are left out."""
        unused = set()
        if not self.model.hidden:
            unused.add("model.activation")
        if self.regularizer.kind == "none":
            unused |= {f"regularizer.{k}" for k in ("lam", "penalize_bias", "scale", "l1_half")}
        elif self.regularizer.kind != "l1":
            unused.add("regularizer.l1_half")
        if self.optimizer.name == "sgd":
            unused.add("optimizer.gamma")
        if self.trainer.stopping == "none":
            unused |= {"trainer.patience", "trainer.monitor"}
        return {
            k: v
            for k, v in self.flat().items()
            if not k.startswith(BOOKKEEPING) and k not in unused
        }

    def training_hash(self, without: tuple[str, ...] = ()) -> str:
        """Identity of what a run computes: every key but tracking and display settings (and
        ``without``: a group of seeds shares the hash without ``trainer.seed``)."""
        keys = {k: v for k, v in self.flat().items() if not k.startswith("tracking.")}
        for key in ("trainer.progress", "trainer.threads", *without):
            keys.pop(key)
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


Rule = tuple[str, Callable[[Any], bool], str]
RULES: list[Rule] = [
    ("model.activation", lambda v: v in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}"),
    ("model.init", lambda v: v in INITS, f"one of {', '.join(INITS)}"),
    ("model.hidden", lambda v: all(h >= 1 for h in v), "a list of sizes >= 1 ([] for softmax)"),
    ("optimizer.name", lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    ("optimizer.lr", lambda v: 0 < v < math.inf, "a finite number > 0"),
    ("optimizer.gamma", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("regularizer.kind", lambda v: v in PENALTIES, f"one of {', '.join(PENALTIES)}"),
    ("regularizer.lam", lambda v: 0 <= v < math.inf, "a finite number >= 0"),
    ("regularizer.scale", lambda v: v in SCALES, f"one of {', '.join(SCALES)}"),
    ("trainer.epochs", lambda v: v >= 1, "an integer >= 1"),
    ("trainer.batch_size", lambda v: v >= 1, "an integer >= 1"),
    ("trainer.patience", lambda v: v >= 1, "an integer >= 1"),
    ("trainer.stopping", lambda v: v in STOPPING, f"one of {', '.join(STOPPING)}"),
    ("trainer.monitor", lambda v: v in MONITORS, f"one of {', '.join(MONITORS)}"),
    ("trainer.seed", lambda v: v >= 0, "an integer >= 0"),
    ("trainer.dtype", lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}"),
    ("trainer.threads", lambda v: v is None or v >= 1, "null or an integer >= 1"),
    ("data.val_fraction", lambda v: 0 < v < 1, "a number in (0, 1)"),
    ("data.normalize", lambda v: v in NORMALIZATIONS, f"one of {', '.join(NORMALIZATIONS)}"),
    ("data.max_train", lambda v: v is None or v >= 10, "null or an integer >= 10"),
    ("data.max_test", lambda v: v is None or v >= 1, "null or an integer >= 1"),
    ("data.split_seed", lambda v: v >= 0, "an integer >= 0"),
    (
        "tracking.experiment",
        lambda v: bool(v.strip()) and len(v) <= 500,
        "a non-empty experiment name of at most 500 characters (MLflow's limit)",
    ),
    ("tracking.stale_after", lambda v: v >= 10, "seconds >= 10 (ten heartbeats)"),
]


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every rule; the first broken one becomes a one-line ``ConfigError``."""
    values = cfg.flat()
    for key, ok, allowed in RULES:
        if not ok(values[key]):
            shown = repr(values[key]) if len(repr(values[key])) <= 80 else f"{values[key]!r:.77}..."
            raise ConfigError(f"{key}={shown} is invalid: expected {allowed}")
    if cfg.model.init == "zeros" and cfg.model.hidden:
        raise ConfigError(
            "model.init='zeros' is invalid with hidden layers (every unit would stay identical): "
            "use glorot or he"
        )
    return cfg


@functools.cache
def bool_keys(schema: type, prefix: str = "") -> tuple[str, ...]:
    """The dotted keys of a dataclass schema typed ``bool``."""
    hints = typing.get_type_hints(schema)
    keys: list[str] = []
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += bool_keys(hints[f.name], f"{prefix}{f.name}.")
        elif hints[f.name] is bool:
            keys.append(prefix + f.name)
    return tuple(keys)


def check_bools(schema: type, cfg: Any, prefix: str = "") -> None:
    """Refuse a non-boolean where the schema wants one: OmegaConf would take
    ``trainer.progress=2`` as true."""
    from omegaconf import OmegaConf

    for key in bool_keys(schema):
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"{prefix}{key}={value!r} is invalid: expected true or false")


@functools.cache
def _schema() -> Any:
    """The schema as an OmegaConf config, built once: building it is most of a conversion's
    cost, and a report converts hundreds of configs (``merge`` never changes it)."""
    from omegaconf import OmegaConf

    return OmegaConf.structured(TrainConfig)


def to_config(cfg: Any) -> TrainConfig:
    """Merge a composed Hydra config into the schema, build the dataclasses and validate them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    hidden = OmegaConf.select(cfg, "model.hidden")
    if isinstance(hidden, int) and not isinstance(hidden, bool):  # model.hidden=128 is [128]
        cfg = OmegaConf.merge(cfg, {"model": {"hidden": [hidden]}})
    check_bools(TrainConfig, cfg)
    try:
        merged = OmegaConf.merge(_schema(), cfg)
        obj = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from None
    return validate(obj)
